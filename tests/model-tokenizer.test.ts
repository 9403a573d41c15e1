// The checkpoint tokenizer: a byte-level BPE tokenizer.json in DeepSeek's shape (Split + ByteLevel
// pre-tokenizers, special BOS/EOS, add_bos_token in tokenizer_config.json). Expected ids follow from
// the fixture's merges by hand and agree with the Rust `tokenizers` library (checked on the
// accelerator machine, see notes).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dirSource } from '../src/model/source.ts';
import { createTokenizer, loadTokenizer } from '../src/model/tokenizer.ts';

const DIR = 'tests/fixtures/tokenizer-bpe';
const BOS = 267;
const EOS = 268;

describe('model tokenizer', () => {
  it('encodes by the BPE merges, BOS first as tokenizer_config asks; decodes back', async () => {
    const t = await loadTokenizer(dirSource(DIR));
    expect(t.bosId).toBe(BOS);
    expect(t.eosIds).toEqual([EOS]);
    expect(t.vocabSize).toBe(269);
    expect(t.chatTemplate).toMatch(/^\{\{ bos_token \}\}/);
    // hello -> h e l l o -> he ll -> hell o -> hello (259); " world" -> Ġworld (264).
    expect(t.encode('hello world')).toEqual([BOS, 259, 264]);
    // " there": Ġthe (266) then r (114) e (101): no merge joins them.
    expect(t.encode('hello there', { addBos: false })).toEqual([259, 266, 114, 101]);
    // é is two UTF-8 bytes, each its own byte-level token.
    expect(t.encode('é', { addBos: false })).toEqual([0xc3, 0xa9]);
    expect(t.decode(t.encode('hello world, é!'))).toBe('hello world, é!');
    expect(t.decode([BOS, 259, EOS], { skipSpecial: false })).toBe('<｜begin▁of▁sentence｜>hello<｜end▁of▁sentence｜>');
  });

  it('special tokens in the text are single ids', async () => {
    const t = await loadTokenizer(dirSource(DIR));
    expect(t.encode('hello<｜end▁of▁sentence｜>', { addBos: false })).toEqual([259, EOS]);
  });

  it('without tokenizer_config.json: no BOS added, no stop token', () => {
    const t = createTokenizer(JSON.parse(readFileSync(`${DIR}/tokenizer.json`, 'utf8')));
    expect(t.encode('hello')).toEqual([259]);
    expect(t.bosId).toBeNull();
    expect(t.eosIds).toEqual([]);
  });

  it('a checkpoint without tokenizer.json, or a broken one, is refused clearly', async () => {
    await expect(loadTokenizer(dirSource('tests/fixtures/tiny-v3-a'))).rejects.toThrow(/tiny-v3-a has no tokenizer.json, so text cannot be turned into tokens: give token ids with --tokens/);
    const json = JSON.parse(readFileSync(`${DIR}/tokenizer.json`, 'utf8'));
    expect(() => createTokenizer(json, { bos_token: '<bos>' }, 'x/tokenizer.json')).toThrow(/x\/tokenizer.json: tokenizer_config.json's bos_token '<bos>' is not in the vocabulary/);
    expect(() => createTokenizer({ model: { type: 'Nonsense' } }, {}, 'y/tokenizer.json')).toThrow(/y\/tokenizer.json: not a tokenizer this library reads/);
  });
});

// The bundled trained model's tokenizer (scripts/train/kjv_bpe.py wrote it and the cases, with its own BPE encoder).
describe('model tokenizer of models/tiny-kjv', () => {
  const CASES = JSON.parse(readFileSync('tests/fixtures/tiny-kjv-tokens.json', 'utf8')) as { cases: { text: string; ids: number[] }[] };

  it('encodes every case as the Python encoder that trained it, and decodes back to the text', async () => {
    const t = await loadTokenizer(dirSource('models/tiny-kjv'));
    expect(t.vocabSize).toBe(1024);
    for (const c of CASES.cases) {
      expect(t.encode(c.text, { addBos: false })).toEqual(c.ids);
      expect(t.decode(c.ids, { skipSpecial: false })).toBe(c.text);
    }
  });

  it('prepends BOS, stops at EOS, and carries a DeepSeek-V3-shaped chat template', async () => {
    const t = await loadTokenizer(dirSource('models/tiny-kjv'));
    const ids = t.encode('In the beginning');
    expect(ids[0]).toBe(t.bosId);
    expect(t.decode(ids)).toBe('In the beginning');
    expect(t.eosIds).toEqual([t.encode('<｜end▁of▁sentence｜>', { addBos: false })[0]]);
    expect(t.chatTemplate).toContain("'<｜User｜>' + message['content']");
    expect(t.chatTemplate).toContain("{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}");
  });
});
