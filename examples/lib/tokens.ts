import { Tiktoken } from "js-tiktoken/lite";
import cl100k_base from "js-tiktoken/ranks/cl100k_base";

// The ranks ship inside the package: no network, ~1 s to build once per process.
let encoder: Tiktoken | null = null;

/** Tokens of `text` in cl100k_base (the GPT-4 / GPT-3.5 encoding). */
export function countTokens(text: string): number {
  encoder ??= new Tiktoken(cl100k_base);
  return encoder.encode(text).length;
}

/** A chat message as both APIs accept it: text content, or text blocks. */
export interface ChatMessage {
  readonly role: string;
  readonly content: string | readonly { readonly type: string; readonly text?: string }[];
}

/**
 * Prompt tokens of a chat request, counted as OpenAI documents for its chat
 * format: each message costs its role and content plus 3 tokens of framing,
 * and every reply is primed with 3 more. The simulator charges exactly this,
 * so a worker that reserves it is never surprised. (Anthropic's tokenizer
 * differs; the simulator uses this count for both APIs.)
 */
export function countChatTokens(messages: readonly ChatMessage[], system?: string): number {
  let tokens = 3;
  if (system !== undefined && system !== "") tokens += 3 + countTokens(system);
  for (const m of messages) {
    tokens += 3 + countTokens(m.role);
    if (typeof m.content === "string") tokens += countTokens(m.content);
    else for (const block of m.content) tokens += countTokens(block.text ?? "");
  }
  return tokens;
}
