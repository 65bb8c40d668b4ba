import { randomInt } from "./prng.js";
import { countChatTokens } from "./tokens.js";

const TOPICS = [
  "the history of the printing press",
  "how a token bucket rate limiter works",
  "why Raft needs a majority to commit",
  "the water cycle",
  "how to brew a good cup of tea",
  "the rules of chess for a beginner",
  "what makes a good code review",
  "how vaccines train the immune system",
];

const ASKS = [
  "Explain it in plain words.",
  "Give three examples.",
  "Keep it short and precise.",
  "Mention one common misconception.",
  "Write it for a curious ten-year-old.",
  "Add a one-line summary at the end.",
];

/** A varied, reproducible chat prompt (about 20 to 200 tokens), with a system prompt kept apart for the Anthropic API. */
export function randomPrompt(random: () => number): { system: string; user: string } {
  const topic = TOPICS[randomInt(random, 0, TOPICS.length - 1)]!;
  const asks = Array.from({ length: randomInt(random, 1, 12) }, () => ASKS[randomInt(random, 0, ASKS.length - 1)]!);
  return { system: "You are a helpful assistant.", user: `Tell me about ${topic}. ${asks.join(" ")}` };
}

/** Filler words, each one cl100k token with its leading space, so `n` of them are `n` tokens. */
const FILLER = [" river", " stone", " green", " light", " paper", " water", " house", " music"];

/**
 * `n` tokens of seeded context to prepend to a prompt: what a request that
 * carries a document or a long conversation looks like to a token limit.
 */
export function contextText(random: () => number, n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`context tokens must be an integer >= 0, got ${n}`);
  let text = "";
  for (let i = 0; i < n; i++) text += FILLER[randomInt(random, 0, FILLER.length - 1)]!;
  return text;
}

/**
 * A random OpenAI-style chat request: system and user messages, max_tokens
 * from `maxTokens`, and `reserveTokens`, what OpenAI counts against TPM when
 * the request arrives (prompt tokens + max_tokens). With `contextTokens`,
 * the user message starts with that many tokens (drawn uniformly) of
 * context ({@link contextText}), drawn after max_tokens, so the same seed
 * gives the same prompt and max_tokens with or without it.
 */
export function randomOpenAiRequest(
  random: () => number,
  maxTokens: { readonly min: number; readonly max: number },
  contextTokens?: { readonly min: number; readonly max: number },
): { messages: ({ role: "system"; content: string } | { role: "user"; content: string })[]; maxTokens: number; reserveTokens: number } {
  const { system, user } = randomPrompt(random);
  const tokens = randomInt(random, maxTokens.min, maxTokens.max);
  const context = contextTokens === undefined ? "" : `Context:${contextText(random, randomInt(random, contextTokens.min, contextTokens.max))}\n\n`;
  const messages = [
    { role: "system" as const, content: system },
    { role: "user" as const, content: `${context}${user}` },
  ];
  return { messages, maxTokens: tokens, reserveTokens: countChatTokens(messages) + tokens };
}
