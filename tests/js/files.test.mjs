// What the composer lets through to a model (static/chatui/files.js): the paperclip's `accept`,
// the refusal of an image, and the images of a conversation a model will not see.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { acceptFor, refusal, unseenImages } from "../../static/chatui/files.js";

const TEXT_ONLY = { id: "t", displayName: "Text" };
const VISION = { id: "v", displayName: "Vision", multimodal: true };
const PNG_ONLY = { ...VISION, multimodalAcceptedMimetypes: ["image/png"] };

describe("the paperclip offers what the model accepts", () => {
  test("a text model is offered no images", () => {
    const accept = acceptFor(TEXT_ONLY).split(",");
    assert.ok(accept.includes("text/*") && accept.includes(".md"));
    assert.ok(!accept.some((type) => type.startsWith("image/")));
  });

  test("a multimodal model is offered its accepted types (image/* by default)", () => {
    assert.ok(acceptFor(VISION).split(",").includes("image/*"));
    const accept = acceptFor(PNG_ONLY).split(",");
    assert.ok(accept.includes("image/png") && !accept.includes("image/*"));
  });
});

describe("refusals", () => {
  test("an image is refused by a text model, a JPEG by a PNG-only one, text by none", () => {
    assert.match(refusal({ type: "image/png", name: "red.png" }, TEXT_ONLY), /Text .*red\.png/);
    assert.match(refusal({ type: "image/jpeg", name: "a.jpg" }, PNG_ONLY), /image\/jpeg/);
    assert.equal(refusal({ type: "image/png", name: "a.png" }, PNG_ONLY), "");
    assert.equal(refusal({ type: "text/plain", name: "notes.txt" }, TEXT_ONLY), "");
  });

  test("a conversation's images that the model will not see are named", () => {
    const messages = [
      { files: [{ kind: "image", mime: "image/png", name: "red.png" }] },
      { files: [{ kind: "text", mime: "text/plain", name: "notes.txt" }] },
      { files: [{ kind: "image", mime: "image/jpeg", name: "cat.jpg" }] },
      {},
    ];
    assert.deepEqual(unseenImages(messages, TEXT_ONLY), ["red.png", "cat.jpg"]);
    assert.deepEqual(unseenImages(messages, PNG_ONLY), ["cat.jpg"]);
    assert.deepEqual(unseenImages(messages, VISION), []);
  });
});
