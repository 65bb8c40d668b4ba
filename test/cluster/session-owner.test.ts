import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster } from "./harness.js";
import { RawClient } from "./raw-client.js";

describe("a session belongs to the key that opened it", () => {
  let cluster: Cluster;
  let otherKey: string;
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { r: { limits: [{ kind: "concurrency", limit: 5 }] } } });
    otherKey = (await cluster.admin("POST", "/v1/keys", { name: "other", scope: { acquire: ["*"] } })).json.secret;
  });
  afterAll(async () => cluster?.stop());

  it("the same key resumes it; another valid key gets a new session instead", async () => {
    const first = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
    const sessionId = first.welcome!.sessionId;
    first.close();
    const stranger = await RawClient.connectToLeader(cluster.urls, otherKey, { resume: sessionId });
    expect(stranger.welcome).toMatchObject({ resumed: false });
    expect(stranger.welcome!.sessionId).not.toBe(sessionId);
    stranger.close();
    const owner = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY, { resume: sessionId });
    expect(owner.welcome).toMatchObject({ resumed: true, sessionId });
    owner.close();
  });
});
