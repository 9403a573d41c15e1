// The decode demo: a DeepSeek-V3-architecture checkpoint, loaded from the bundled tiny one, a folder or
// a URL, decoded token by token in this tab with the library's kernels. Weights are refused before
// upload past the GPU memory budget the page shows (WebGPU does not report free memory); downloads
// are cached within a quota the page shows, with a control to clear them.
import {
  Decoder,
  describeArch,
  filesSource,
  formatBytes,
  generate,
  parseTokenIds,
  loadTokenizer,
  loadWeights,
  openCheckpoint,
  planWeights,
  readText,
  type Checkpoint,
  type GpuContext,
  type ModelSource,
  type ModelTokenizer,
  type ModelWeights,
} from '../../src/index.ts';
import { adapterPanel, banner, el, openGpu } from '../common/ui.ts';
import { cachedUrlSource, cacheUsage, clearCachedModels } from './cache.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const MAX_SEQ = 256;
const w = window as unknown as { __decode?: { loaded?: boolean; done?: boolean; ids?: number[]; reference?: number[]; error?: string } };
w.__decode = {};

const ctx = await openGpu();
$('device').replaceChildren(el('h2', {}, 'Your GPU'), ctx ? adapterPanel(ctx) : el('p', { className: 'muted' }, 'No WebGPU: see above.'));

let model: { ck: Checkpoint; weights: ModelWeights; dec: Decoder; tokenizer?: ModelTokenizer; reference?: number[] } | undefined;
let stopping = false;

/** Shows what the cached downloads hold against their quota. */
async function showCache(): Promise<void> {
  const u = await cacheUsage();
  $('cacheInfo').textContent = `cached models: ${u.files} file(s), ${formatBytes(u.bytes)} of a ${formatBytes(u.quota)} quota (oldest evicted first)`;
}
void showCache();
$('clearCache').onclick = async () => {
  await clearCachedModels();
  await showCache();
};

/** The GPU memory budget field, in bytes. */
function memoryBudget(): number {
  const gib = Number($<HTMLInputElement>('budget').value);
  if (!(gib > 0 && Number.isFinite(gib))) throw new Error(`GPU memory budget: expected a positive number of GiB, got '${$<HTMLInputElement>('budget').value}'`);
  return gib * 2 ** 30;
}

function fail(e: unknown): void {
  const msg = (e as Error).message ?? String(e);
  banner('error', msg);
  $('loadStatus').textContent = 'failed';
  w.__decode!.error = msg;
}

async function load(c: GpuContext, source: ModelSource): Promise<void> {
  for (const b of ['tiny', 'loadUrl', 'generate']) $<HTMLButtonElement>(b).disabled = true;
  model?.dec.destroy();
  model?.weights.destroy();
  model = undefined;
  try {
    $('loadStatus').textContent = `reading ${source.where}…`;
    const ck = await openCheckpoint(source);
    const plan = planWeights(ck);
    const params = Object.values(plan.paramsByDtype).reduce((a, b) => a + b, 0);
    $('model').replaceChildren(
      el('h2', {}, 'Model'),
      el('p', { className: 'muted' }, `${source.where}: ${ck.files.length} file(s)`),
      ...describeArch(ck.config).map((l) => el('p', { className: 'stat' }, l)),
      el('p', { className: 'stat' }, `parameters ${(params / 1e6).toFixed(2)} M (${Object.entries(plan.paramsByDtype).map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)} M`).join(', ')}); GPU memory for weights ${formatBytes(plan.gpuBytes)}`),
    );
    const t0 = performance.now();
    const weights = await loadWeights(c, ck, {
      memoryBudget: memoryBudget(),
      onProgress: (p) => {
        $('progress').style.width = `${(100 * p.bytesDone) / Math.max(1, p.bytesTotal)}%`;
        $('loadStatus').textContent = `${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}: ${p.tensor}`;
      },
    });
    const dec = await Decoder.create(c, ck, weights, { maxSeqLen: Math.min(MAX_SEQ, ck.config.maxPositionEmbeddings) });
    let reference: number[] | undefined;
    // With a tokenizer.json the prompt is text; without one, token ids.
    const tokenizer = await loadTokenizer(source, { optional: true });
    $('promptLabel').textContent = tokenizer ? 'prompt (text)' : 'prompt token ids (comma separated): this checkpoint has no tokenizer.json';
    if (tokenizer) $<HTMLTextAreaElement>('prompt').value = 'The capital of France is';
    if (!tokenizer && (await source.has('reference.json'))) {
      // The bundled fixtures carry transformers' outputs: use its prompt and compare the greedy tokens.
      const ref = JSON.parse(await readText(source, 'reference.json')) as { prompt_ids: number[]; greedy_ids: number[] };
      $<HTMLTextAreaElement>('prompt').value = ref.prompt_ids.join(', ');
      $<HTMLInputElement>('maxNew').value = String(ref.greedy_ids.length);
      reference = ref.greedy_ids;
    }
    model = { ck, weights, dec, tokenizer, reference };
    $('loadStatus').textContent = `loaded ${formatBytes(plan.gpuBytes)} in ${((performance.now() - t0) / 1e3).toFixed(2)} s`;
    w.__decode = { loaded: true, reference };
  } catch (e) {
    fail(e);
  } finally {
    for (const b of ['tiny', 'loadUrl']) $<HTMLButtonElement>(b).disabled = false;
    $<HTMLButtonElement>('generate').disabled = !model;
    await showCache();
  }
}

function parsePrompt(vocab: number, tokenizer: ModelTokenizer | undefined): number[] {
  if (tokenizer) {
    const ids = tokenizer.encode($<HTMLTextAreaElement>('prompt').value);
    if (!ids.length) throw new Error('prompt: type some text');
    return ids;
  }
  const text = $<HTMLTextAreaElement>('prompt').value.trim();
  if (!text) throw new Error(`prompt: expected token ids in 0..${vocab - 1}, separated by commas or spaces`);
  return parseTokenIds(text, vocab, /[\s,]+/, 'prompt');
}

async function run(): Promise<void> {
  if (!model) return;
  const { dec, ck, tokenizer, reference } = model;
  try {
    const prompt = parsePrompt(ck.config.vocabSize, tokenizer);
    const maxNew = Number($<HTMLInputElement>('maxNew').value);
    if (prompt.length + maxNew > dec.maxSeqLen) throw new Error(`prompt (${prompt.length}) + max new tokens (${maxNew}) exceeds this demo's cache of ${dec.maxSeqLen} tokens`);
    const greedy = $<HTMLInputElement>('greedy').checked;
    const sampling = greedy ? {} : { temperature: Number($<HTMLInputElement>('temperature').value), topP: Number($<HTMLInputElement>('topP').value), topK: Number($<HTMLInputElement>('topK').value) };
    $<HTMLButtonElement>('generate').disabled = true;
    $<HTMLButtonElement>('stop').disabled = false;
    stopping = false;
    const out = $('output');
    const text = el('span');
    out.replaceChildren(el('span', { className: 'prompt' }, tokenizer ? $<HTMLTextAreaElement>('prompt').value : `${prompt.join(' ')} `), text);
    $('check').textContent = '';
    const t0 = performance.now();
    let first = 0;
    let n = 0;
    const ids: number[] = [];
    const r = await generate(dec, [prompt], {
      maxNewTokens: maxNew,
      seed: Number($<HTMLInputElement>('seed').value),
      stopTokens: tokenizer?.eosIds.length ? tokenizer.eosIds : ck.config.eosTokenIds,
      ...sampling,
      shouldStop: () => stopping,
      onToken: (_, t) => {
        const now = performance.now();
        if (!n) first = now;
        n++;
        ids.push(t);
        // Text is decoded from all new ids at once: a character may span several tokens.
        if (tokenizer) text.textContent = tokenizer.decode(ids);
        else text.append(el('span', { className: 'tok' }, String(t)), ' ');
        const decodeRate = n > 1 ? ((n - 1) * 1e3) / (now - first) : 0;
        $('stats').textContent = `${n} tokens; prefill + first token ${((first - t0) / 1e3).toFixed(2)} s; ${decodeRate ? `${decodeRate.toFixed(1)} tokens/s, ${(1e3 / decodeRate).toFixed(0)} ms/token` : ''}`;
      },
    });
    $('stats').textContent += ` (${r.tokens} tokens processed in ${(r.ms / 1e3).toFixed(2)} s)`;
    if (reference && greedy) {
      const same = ids.length === reference.length && ids.every((t, i) => t === reference[i]);
      $('check').textContent = same ? "Greedy tokens identical to transformers' reference." : `Greedy tokens differ from transformers' reference (${reference.join(' ')}).`;
    }
    w.__decode = { ...w.__decode, done: true, ids, reference };
  } catch (e) {
    fail(e);
  } finally {
    $<HTMLButtonElement>('generate').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

if (ctx) {
  $('tiny').onclick = async () => {
    try {
      await load(ctx, await cachedUrlSource(new URL('../models/tiny-v3-a/', location.href).href));
    } catch (e) {
      fail(e);
    }
  };
  $<HTMLInputElement>('folder').onchange = (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files?.length) void load(ctx, filesSource(files, `${files.length} picked files`));
  };
  $('loadUrl').onclick = async () => {
    const url = $<HTMLInputElement>('url').value.trim();
    if (!/^https?:\/\//.test(url)) return fail(new Error(`expected an http(s) URL of a folder holding config.json and *.safetensors, got '${url}'`));
    try {
      await load(ctx, await cachedUrlSource(url));
    } catch (e) {
      fail(e);
    }
  };
  $('generate').onclick = () => void run();
  $('stop').onclick = () => (stopping = true);
  if (new URLSearchParams(location.search).has('autorun')) {
    await load(ctx, await cachedUrlSource(new URL('../models/tiny-v3-a/', location.href).href));
    await run();
  }
} else for (const b of ['tiny', 'loadUrl']) $<HTMLButtonElement>(b).disabled = true;
