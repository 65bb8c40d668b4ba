import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientDirection, encodeClientFrame } from "./client.js";
import { PROTOCOL_VERSION } from "./limits.js";
import { encodePeerFrame, peerDirection } from "./peer.js";
import { encodeServerFrame, serverDirection } from "./server.js";
import { RECORD_TABLE } from "./structures.js";
import { arbClientMessage, arbPeerMessage, arbServerMessage } from "./arbitraries.js";

/**
 * The wire layout of each released PROTOCOL_VERSION: the record table and
 * every direction's tags, types and field order. Changing any of them
 * without bumping the version would let two builds that both claim version N
 * misread each other's frames.
 */
const FINGERPRINTS: Readonly<Record<number, string>> = {
  // Version 1 is not released yet, so its layout still follows packages/raft's Message (vote
  // answers gained commit and commitTerm; hello gained `encoding`; peerHello gained its challenge-response proof; the link layer gained clockProbe and clockEcho;
  // granted gained sentAt and the client gained report, for delivery reports);
  // from the first release on, a change is a new version.
  1: "960889a4ccbcc323",
};

function fingerprint(): string {
  const directions = [clientDirection, serverDirection, peerDirection].map((direction) => ({
    name: direction.name,
    messages: [...direction.byTag.values()]
      .sort((a, b) => a.tag - b.tag)
      .map((codec) => [codec.tag, codec.type, codec.handshake, ...codec.fields]),
  }));
  return createHash("sha256").update(JSON.stringify({ table: RECORD_TABLE, directions })).digest("hex").slice(0, 16);
}

describe("the record table", () => {
  it("is pinned to PROTOCOL_VERSION (bump the version when the layout changes)", () => {
    expect(
      fingerprint(),
      `the wire layout changed: bump PROTOCOL_VERSION and record its fingerprint in FINGERPRINTS`,
    ).toBe(FINGERPRINTS[PROTOCOL_VERSION]);
  });

  it("holds every ordinary message shape exactly once and no handshake shape", () => {
    const keys = RECORD_TABLE.map((shape) => shape.join(","));
    expect(new Set(keys).size).toBe(keys.length);
    for (const direction of [clientDirection, serverDirection, peerDirection]) {
      for (const codec of direction.byType.values()) {
        expect(keys.includes(["t", ...codec.fields].join(",")), `${direction.name} ${codec.type}`).toBe(!codec.handshake);
      }
    }
  });

  it("fits msgpackr's one-byte record ids (at most 32 shapes)", () => {
    expect(RECORD_TABLE.length).toBeLessThanOrEqual(32);
  });

  it("matches each codec's wire records key for key, so ordinary frames carry no field names", () => {
    const sides = [
      { direction: clientDirection, samples: fc.sample(arbClientMessage, { seed: 1, numRuns: 300 }), encode: encodeClientFrame },
      { direction: serverDirection, samples: fc.sample(arbServerMessage, { seed: 1, numRuns: 300 }), encode: encodeServerFrame },
      { direction: peerDirection, samples: fc.sample(arbPeerMessage, { seed: 1, numRuns: 300 }), encode: encodePeerFrame },
    ] as const;
    // Field names long enough never to occur by chance in the sampled values.
    const names = [...new Set(RECORD_TABLE.flat())].filter((name) => name.length >= 8);
    for (const { direction, samples, encode } of sides) {
      for (const message of samples) {
        const codec = direction.byType.get(message.type);
        if (codec === undefined) throw new Error(`no codec for ${message.type}`);
        if (codec.handshake) continue;
        expect(Object.keys(codec.toWire(message as never))).toEqual(["t", ...codec.fields]);
        const text = Buffer.from((encode as (m: unknown[]) => Uint8Array)([message])).toString("latin1");
        for (const name of names) expect(text.includes(name), `${message.type} frame spells out ${name}`).toBe(false);
      }
    }
  });
});
