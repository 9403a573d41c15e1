// A Hugging Face checkpoint directory: config.json plus one model.safetensors or shards listed by
// model.safetensors.index.json. Opening it reads only headers and checks every tensor the config
// implies (present, shape, dtype, FP8 scales) before a single weight byte is read.
import { decodeE4M3 } from '../formats/fp8.ts';
import { decodeBF16, decodeF16 } from '../formats/half.ts';
import { DeepwgslError } from '../gpu/errors.ts';
import { isMoeLayer, parseModelConfig, tensorCount, type ModelConfig } from './config.ts';
import { readSafetensorsHeader, SafetensorsError, type StDtype, type StTensor } from './safetensors.ts';
import { isSafeFileName, readText, type ModelSource } from './source.ts';

export type TensorRole = 'linear' | 'norm' | 'embed' | 'router' | 'bias';

export interface ExpectedTensor {
  name: string;
  shape: [number] | [number, number];
  role: TensorRole;
}

export interface Checkpoint {
  source: ModelSource;
  config: ModelConfig;
  /** Every tensor in the checkpoint's files, by name. */
  tensors: Map<string, StTensor>;
  /** The tensors the runtime uses, in load order. */
  expected: ExpectedTensor[];
  files: string[];
}

export class CheckpointError extends DeepwgslError {
  override name = 'CheckpointError';
}

/** The tensors a config implies, with shapes (the multi-token-prediction layers are not used). */
export function expectedTensors(c: ModelConfig): ExpectedTensor[] {
  const H = c.hiddenSize;
  const t: ExpectedTensor[] = [];
  const lin = (name: string, n: number, k: number) => t.push({ name: `${name}.weight`, shape: [n, k], role: 'linear' });
  const norm = (name: string, n: number) => t.push({ name: `${name}.weight`, shape: [n], role: 'norm' });
  const mlp = (p: string, inter: number) => {
    lin(`${p}.gate_proj`, inter, H);
    lin(`${p}.up_proj`, inter, H);
    lin(`${p}.down_proj`, H, inter);
  };
  t.push({ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H], role: 'embed' });
  const qk = c.qkNopeHeadDim + c.qkRopeHeadDim;
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    norm(`${p}.input_layernorm`, H);
    if (c.qLoraRank === null) lin(`${p}.self_attn.q_proj`, c.numHeads * qk, H);
    else {
      lin(`${p}.self_attn.q_a_proj`, c.qLoraRank, H);
      norm(`${p}.self_attn.q_a_layernorm`, c.qLoraRank);
      lin(`${p}.self_attn.q_b_proj`, c.numHeads * qk, c.qLoraRank);
    }
    lin(`${p}.self_attn.kv_a_proj_with_mqa`, c.kvLoraRank + c.qkRopeHeadDim, H);
    norm(`${p}.self_attn.kv_a_layernorm`, c.kvLoraRank);
    lin(`${p}.self_attn.kv_b_proj`, c.numHeads * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank);
    lin(`${p}.self_attn.o_proj`, H, c.numHeads * c.vHeadDim);
    norm(`${p}.post_attention_layernorm`, H);
    if (isMoeLayer(c, i)) {
      const m = c.moe!;
      t.push({ name: `${p}.mlp.gate.weight`, shape: [m.nRoutedExperts, H], role: 'router' });
      if (m.topkMethod === 'noaux_tc') t.push({ name: `${p}.mlp.gate.e_score_correction_bias`, shape: [m.nRoutedExperts], role: 'bias' });
      for (let e = 0; e < m.nRoutedExperts; e++) mlp(`${p}.mlp.experts.${e}`, m.moeIntermediateSize);
      if (m.nSharedExperts > 0) mlp(`${p}.mlp.shared_experts`, m.moeIntermediateSize * m.nSharedExperts);
    } else mlp(`${p}.mlp`, c.intermediateSize);
  }
  norm('model.norm', H);
  if (!c.tieWordEmbeddings) t.push({ name: 'lm_head.weight', shape: [c.vocabSize, H], role: 'embed' });
  return t;
}

export const scaleName = (weight: string) => weight.replace(/\.weight$/, '.weight_scale_inv');

/** [ceil(n/128), ceil(k/128)]: one scale per 128x128 block of an [n, k] FP8 weight. */
export const blockScaleShape = (n: number, k: number): [number, number] => [Math.ceil(n / 128), Math.ceil(k / 128)];

/** weight_map of model.safetensors.index.json: tensor name -> shard file name, each name inside the folder. */
function parseIndex(text: string, where: string, source: ModelSource): Map<string, string> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const map = (j as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new CheckpointError(`${where}: expected a JSON object with a "weight_map" object (tensor name -> shard file)`);
  const index = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (!isSafeFileName(file)) {
      throw new CheckpointError(`${where}: weight_map['${tensor}'] names the shard ${JSON.stringify(file)}, which is not a file inside ${source.where} (shards are relative names, no '..', '/' first or scheme)`);
    }
    index.set(tensor, file);
  }
  return index;
}

/** Reads config and headers (single file or index + shards) and validates every tensor. */
export async function openCheckpoint(source: ModelSource): Promise<Checkpoint> {
  if (!(await source.has('config.json'))) throw new CheckpointError(`${source.where}: no config.json`);
  const config = parseModelConfig(await readText(source, 'config.json'), `${source.where}/config.json`);
  let files: string[];
  let index: Map<string, string> | undefined;
  if (await source.has('model.safetensors.index.json')) {
    const where = `${source.where}/model.safetensors.index.json`;
    index = parseIndex(await readText(source, 'model.safetensors.index.json'), where, source);
    files = [...new Set(index.values())].sort();
    for (const f of files) if (!(await source.has(f))) throw new CheckpointError(`${where}: lists shard '${f}', which is missing from ${source.where}`);
  } else if (await source.has('model.safetensors')) files = ['model.safetensors'];
  else {
    const listed = (await source.list())?.filter((n) => n.endsWith('.safetensors')).sort();
    if (!listed?.length) throw new CheckpointError(`${source.where}: no model.safetensors, model.safetensors.index.json or *.safetensors`);
    files = listed;
  }
  const tensors = new Map<string, StTensor>();
  for (const f of files) {
    for (const [name, t] of await readSafetensorsHeader(source.open(f))) {
      const prev = tensors.get(name);
      if (prev) throw new CheckpointError(`tensor '${name}' is in both ${prev.file.name} and ${t.file.name}`);
      const listed = index?.get(name);
      if (listed !== undefined && listed !== f) {
        throw new CheckpointError(`tensor '${name}' is in ${t.file.name}, but model.safetensors.index.json puts it in '${listed}'`);
      }
      tensors.set(name, t);
    }
  }
  // The list is built only for a config that can match: one that implies more tensors than there are does not.
  const count = tensorCount(config);
  if (count > tensors.size) {
    throw new CheckpointError(
      `${source.where}/config.json implies ${count} tensors (num_hidden_layers ${config.numLayers}${config.moe ? `, n_routed_experts ${config.moe.nRoutedExperts}` : ''}), ` +
        `but the checkpoint's ${files.length} file(s) hold ${tensors.size}: the config does not describe this checkpoint`,
    );
  }
  const expected = expectedTensors(config);
  validate(config, tensors, expected);
  return { source, config, tensors, expected, files };
}

function validate(c: ModelConfig, tensors: Map<string, StTensor>, expected: ExpectedTensor[]): void {
  const missing = expected.filter((e) => !tensors.has(e.name)).map((e) => e.name);
  if (missing.length) {
    const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, ... (${missing.length} in all)` : '');
    throw new CheckpointError(`checkpoint lacks tensors the config needs: ${shown}`);
  }
  for (const e of expected) {
    const t = tensors.get(e.name)!;
    const at = `${t.file.name}: tensor '${e.name}'`;
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw new CheckpointError(`${at} has shape [${t.shape.join(', ')}], the config implies [${e.shape.join(', ')}]`);
    }
    if (t.dtype === 'F8_E4M3') {
      if (e.role !== 'linear') throw new CheckpointError(`${at} is F8_E4M3; only linear projection weights may be FP8`);
      const s = tensors.get(scaleName(e.name));
      const want = blockScaleShape(e.shape[0], e.shape[1]!);
      if (!s) throw new CheckpointError(`${at} is F8_E4M3 but '${scaleName(e.name)}' (its 128x128 block scales) is missing`);
      if (s.dtype === 'F8_E4M3' || s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1]) {
        throw new CheckpointError(`${s.file.name}: tensor '${s.name}' is ${s.dtype} [${s.shape.join(', ')}]; expected a float [${want.join(', ')}] (one scale per 128x128 block)`);
      }
      if (!c.fp8BlockSize) throw new CheckpointError(`${at} is F8_E4M3 but config.json has no quantization_config with weight_block_size [128, 128]`);
    }
  }
  // A config with fewer layers or experts than the checkpoint would load a smaller model without a word.
  const used = new Set(expected.flatMap((e) => (tensors.get(e.name)!.dtype === 'F8_E4M3' ? [e.name, scaleName(e.name)] : [e.name])));
  const extra = [...tensors.values()].filter((t) => !used.has(t.name) && !spare(c, tensors, t.name));
  if (extra.length) {
    const more = extra.length > 1 ? ` and ${extra.length - 1} more` : '';
    const experts = c.moe ? `, n_routed_experts ${c.moe.nRoutedExperts}` : '';
    throw new CheckpointError(
      `${extra[0].file.name}: tensor '${extra[0].name}'${more} not used by config.json (num_hidden_layers ${c.numLayers}, num_nextn_predict_layers ${c.nextnLayers}${experts}): ` +
        'the config does not describe this checkpoint',
    );
  }
}

/**
 * Tensors a checkpoint may hold that the runtime does not use: the multi-token-prediction layers
 * num_nextn_predict_layers declares after the decoder layers (each has an eh_proj, which a decoder
 * layer has not), rope buffers some exports save, a tied lm_head.
 */
function spare(c: ModelConfig, tensors: Map<string, StTensor>, name: string): boolean {
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (!layer) return name === 'lm_head.weight' && c.tieWordEmbeddings;
  const i = Number(layer[1]);
  const mtp = i >= c.numLayers && i < c.numLayers + c.nextnLayers && tensors.has(`model.layers.${i}.eh_proj.weight`);
  return mtp || name.endsWith('.rotary_emb.inv_freq');
}

/** Host values of any float safetensors dtype as float64. */
export function decodeStBytes(bytes: Uint8Array, dtype: StDtype): Float64Array {
  const n = bytes.byteLength / (dtype === 'F32' ? 4 : dtype === 'F8_E4M3' ? 1 : 2);
  const out = new Float64Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === 'F8_E4M3') for (let i = 0; i < n; i++) out[i] = decodeE4M3(bytes[i]);
  else {
    const dec = dtype === 'BF16' ? decodeBF16 : decodeF16;
    for (let i = 0; i < n; i++) out[i] = dec(dv.getUint16(2 * i, true));
  }
  return out;
}

export async function readStBytes(t: StTensor): Promise<Uint8Array> {
  const b = await t.file.read(t.offset, t.byteLength);
  if (b.byteLength !== t.byteLength) throw new SafetensorsError(`${t.file.name}: tensor '${t.name}' is cut short (${b.byteLength} of ${t.byteLength} bytes): truncated`);
  return b;
}

/** A weight as float64 on the host, FP8 blocks multiplied by their weight_scale_inv (for the CPU reference). */
export async function readWeightF64(ck: Checkpoint, name: string): Promise<Float64Array> {
  const t = ck.tensors.get(name);
  if (!t) throw new CheckpointError(`checkpoint has no tensor '${name}'`);
  const w = decodeStBytes(await readStBytes(t), t.dtype);
  if (t.dtype !== 'F8_E4M3') return w;
  const s = ck.tensors.get(scaleName(name))!;
  const scales = decodeStBytes(await readStBytes(s), s.dtype);
  const [n, k] = t.shape;
  const bk = Math.ceil(k / 128);
  for (let r = 0; r < n; r++) for (let col = 0; col < k; col++) w[r * k + col] *= scales[Math.floor(r / 128) * bk + Math.floor(col / 128)];
  return w;
}
