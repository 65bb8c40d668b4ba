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

/**
 * A random OpenAI-style chat request: system and user messages, max_tokens
 * from `maxTokens`, and `reserveTokens`, what OpenAI counts against TPM when
 * the request arrives (prompt tokens + max_tokens).
 */
export function randomOpenAiRequest(
  random: () => number,
  maxTokens: { readonly min: number; readonly max: number },
): { messages: ({ role: "system"; content: string } | { role: "user"; content: string })[]; maxTokens: number; reserveTokens: number } {
  const { system, user } = randomPrompt(random);
  const messages = [
    { role: "system" as const, content: system },
    { role: "user" as const, content: user },
  ];
  const tokens = randomInt(random, maxTokens.min, maxTokens.max);
  return { messages, maxTokens: tokens, reserveTokens: countChatTokens(messages) + tokens };
}
