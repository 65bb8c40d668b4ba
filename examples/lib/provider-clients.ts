// The provider client classes, re-exported for test/examples: the test
// package does not depend on openai or @anthropic-ai/sdk, this one does.
// The examples themselves import them directly, as an application would.
export { default as Anthropic } from "@anthropic-ai/sdk";
export { default as OpenAI } from "openai";
