// Text <-> token ids for a checkpoint: its tokenizer.json (Hugging Face tokenizers format) through
// @huggingface/tokenizers (pure JS: Node, Deno and browsers), with tokenizer_config.json for the
// BOS/EOS tokens and whether BOS is prepended. DeepSeek's tokenizer_config says add_bos_token with
// a LlamaTokenizerFast class whose post-processor adds it in Python; tokenizer.json alone does not,
// so the BOS is prepended here when the config asks for it.
import { Tokenizer } from '@huggingface/tokenizers';
import { DeepwgslError } from '../gpu/errors.ts';
import { readText, type ModelSource } from './source.ts';

export class TokenizerError extends DeepwgslError {
  override name = 'TokenizerError';
}

type Json = Record<string, unknown>;

export interface ModelTokenizer {
  /** Token ids of `text`, with the BOS first when tokenizer_config asks for it (unless addBos: false). */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Text of `ids`; special tokens (BOS, EOS) are dropped unless skipSpecial: false. */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  bosId: number | null;
  /** Stop tokens: tokenizer_config's eos_token. */
  eosIds: number[];
  /** tokenizer_config.json's chat_template (Jinja), where there is one; not rendered here. */
  chatTemplate: string | null;
  vocabSize: number;
}

async function readJson(src: ModelSource, name: string): Promise<Json> {
  try {
    const j = JSON.parse(await readText(src, name)) as unknown;
    if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object');
    return j as Json;
  } catch (e) {
    throw new TokenizerError(`${src.where}/${name}: ${(e as Error).message}`);
  }
}

/** A special token in tokenizer_config: a string or an AddedToken object {content}. */
const tokenText = (v: unknown): string | null =>
  typeof v === 'string' ? v : v !== null && typeof v === 'object' && typeof (v as Json).content === 'string' ? ((v as Json).content as string) : null;

export function createTokenizer(tokenizerJson: Json, tokenizerConfig: Json = {}, where = 'tokenizer.json'): ModelTokenizer {
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new TokenizerError(`${where}: not a tokenizer this library reads (${(e as Error).message})`);
  }
  const idOf = (field: string): number | null => {
    const text = tokenText(tokenizerConfig[field]);
    if (text === null) return null;
    const id = tok.token_to_id(text);
    if (id === undefined) throw new TokenizerError(`${where}: tokenizer_config.json's ${field} '${text}' is not in the vocabulary`);
    return id;
  };
  const bosId = idOf('bos_token');
  const eosId = idOf('eos_token');
  const addBos = tokenizerConfig.add_bos_token === true && bosId !== null;
  const vocabSize = Math.max(...tok.get_vocab(true).values()) + 1;
  return {
    bosId,
    eosIds: eosId === null ? [] : [eosId],
    chatTemplate: typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : null,
    vocabSize,
    encode(text, opts = {}) {
      const ids = tok.encode(text, { add_special_tokens: true }).ids;
      // The post-processor may already add it (a TemplateProcessing tokenizer.json).
      if ((opts.addBos ?? addBos) && bosId !== null && ids[0] !== bosId) return [bosId, ...ids];
      return ids;
    },
    decode(ids, opts = {}) {
      return tok.decode([...ids], { skip_special_tokens: opts.skipSpecial ?? true, clean_up_tokenization_spaces: false });
    },
  };
}

/** The checkpoint's tokenizer; refused clearly where it has none (token ids must then be given). */
/** The checkpoint's tokenizer; `optional`: undefined instead of an error where it has no tokenizer.json. */
export async function loadTokenizer(src: ModelSource): Promise<ModelTokenizer>;
export async function loadTokenizer(src: ModelSource, opts: { optional: true }): Promise<ModelTokenizer | undefined>;
export async function loadTokenizer(src: ModelSource, opts: { optional?: boolean } = {}): Promise<ModelTokenizer | undefined> {
  if (!(await src.has('tokenizer.json'))) {
    if (opts.optional) return undefined;
    throw new TokenizerError(`${src.where} has no tokenizer.json, so text cannot be turned into tokens: give token ids with --tokens 1,2,3`);
  }
  const json = await readJson(src, 'tokenizer.json');
  const config = (await src.has('tokenizer_config.json')) ? await readJson(src, 'tokenizer_config.json') : {};
  return createTokenizer(json, config, `${src.where}/tokenizer.json`);
}
