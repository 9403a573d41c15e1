#!/usr/bin/env python3
# Trains models/tiny-kjv: a small DeepSeek-V3-architecture model (MLA with q LoRA, YaRN rope,
# noaux_tc sigmoid group routing with e_score_correction_bias, a shared expert, a dense first layer,
# one MTP module) on the King James Bible (Debian's bible-kjv-text, public domain: see kjv_bpe.py),
# with the V3 paper's objective: next-token loss + MTP_WEIGHT * next-next-token loss through the MTP
# module, the auxiliary-loss-free balancing (bias updates) and the small sequence-wise balance loss.
# The model code follows the architecture's definition (DeepSeek-V2/V3 papers); nothing is imported
# from transformers or DeepSeek.
#
# Then it exports the checkpoint in DeepSeek-V3's official layout (linear weights e4m3 with f32
# weight_scale_inv per 128x128 block, encoded here by hand: torch 1.13 has no float8; embeddings and
# lm_head bf16; norms, router and bias f32; the MTP module as layer num_hidden_layers, named as
# DeepSeek-V3's checkpoints name it), and reference.json: float64 logits of this code's forward pass
# over the dequantized weights that ship, and greedy ids, the oracle the runtime is tested against.
#
# Needs (Debian 12, as root): apt-get install -y python3-torch libopenblas0-pthread python3-regex
#   bible-kjv bible-kjv-text wamerican
# (without libopenblas0-pthread torch uses the reference BLAS, about 10x slower).
# Usage: /usr/bin/python3 scripts/train/train_tiny.py [--steps N] [--export-only]
#   trains N steps (default STEPS; run kjv_bpe.py first: training reads its tokenizer), keeps the float32
#   master weights in /tmp/tiny-kjv-master.pt, writes models/tiny-kjv/ and
#   tests/fixtures/tiny-kjv-fp8.safetensors (FP8 encoder cases and two master weights for the runtime's
#   bit-for-bit check); --export-only redoes the export and evaluation from the saved master weights.
# Seeded (initialisation, data order, sampling): a rerun repeats the same steps; the last bits of the
# weights may differ between machines (BLAS kernels and threading).
import argparse
import json
import math
import os
import random
import re
import struct
import sys
import time

import numpy as np

# Spinning OpenMP threads slow training 5-10x when other processes share the 2 cores (set before torch starts them).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kjv_bpe  # noqa: E402

MODEL_DIR = "models/tiny-kjv"
FP8_FIXTURE = "tests/fixtures/tiny-kjv-fp8.safetensors"
MASTER = "/tmp/tiny-kjv-master.pt"

CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": kjv_bpe.VOCAB_SIZE,
    "hidden_size": 256,
    "intermediate_size": 512,
    "moe_intermediate_size": 48,
    "num_hidden_layers": 3,
    "num_nextn_predict_layers": 1,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "q_lora_rank": 128,
    "kv_lora_rank": 128,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 16,
    "n_shared_experts": 1,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "norm_topk_prob": True,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_interleave": True,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
    "initializer_range": 0.02,
    "torch_dtype": "bfloat16",
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
}

SEQ_LEN = 128
STEPS = 2500
BATCH = 16
LR = 3e-3
WARMUP = 100
WEIGHT_DECAY = 0.1
# The V3 paper: MTP loss weight 0.3 for the first part of training, 0.1 after; sequence-wise balance
# loss weight 0.0001. Its bias update speed 0.001 suits its long run; 2,500 steps need 0.01 to keep up with the router.
MTP_WEIGHT = (0.3, 0.1)
MTP_SWITCH = 0.7
BIAS_SPEED = 1e-2
BALANCE_ALPHA = 1e-4
CHAT_PAIRS = 2000
SEED = 0


# ---- model (float32 for training, float64 for the reference) ----


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def yarn_mscale(factor, mscale):
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def rope_inv_freq(c):
    """YaRN inverse frequencies (float32): interpolated by `factor` below the beta_slow wavelength
    bound, kept above beta_fast's, a linear ramp between."""
    d, base, r = c["qk_rope_head_dim"], c["rope_theta"], c["rope_scaling"]
    pos = base ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
    corr = lambda rot: (d * math.log(r["original_max_position_embeddings"] / (rot * 2 * math.pi))) / (2 * math.log(base))
    low, high = max(math.floor(corr(r["beta_fast"])), 0), min(math.ceil(corr(r["beta_slow"])), d - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrap = 1 - ramp
    return (1 / (r["factor"] * pos)) * (1 - extrap) + (1 / pos) * extrap


def rope_attention_factor(c):
    r = c["rope_scaling"]
    return yarn_mscale(r["factor"], r["mscale"]) / yarn_mscale(r["factor"], r["mscale_all_dim"])


def softmax_scale(c):
    r = c["rope_scaling"]
    return (c["qk_nope_head_dim"] + c["qk_rope_head_dim"]) ** -0.5 * yarn_mscale(r["factor"], r["mscale_all_dim"]) ** 2


def rope(x, cos, sin):
    """Rotates the interleaved pairs (2i, 2i+1) of x [..., T, heads, d] by the angles of cos/sin [T, d/2]."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


class MLA(nn.Module):
    """Multi-head latent attention: queries through a low-rank q_a -> norm -> q_b; keys and values
    from one compressed latent (kv_a -> norm -> kv_b) plus a rope key part shared by all heads."""

    def __init__(self, c):
        super().__init__()
        H, nh = c["hidden_size"], c["num_attention_heads"]
        self.nh, self.dn, self.dr, self.dv, self.kvr = nh, c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        self.q_a_proj = nn.Linear(H, c["q_lora_rank"], bias=False)
        self.q_a_layernorm = RMSNorm(c["q_lora_rank"], c["rms_norm_eps"])
        self.q_b_proj = nn.Linear(c["q_lora_rank"], nh * (self.dn + self.dr), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(H, self.kvr + self.dr, bias=False)
        self.kv_a_layernorm = RMSNorm(self.kvr, c["rms_norm_eps"])
        self.kv_b_proj = nn.Linear(self.kvr, nh * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(nh * self.dv, H, bias=False)
        self.scale = softmax_scale(c)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(B, T, self.nh, self.dn + self.dr)
        q_nope, q_pe = q.split([self.dn, self.dr], -1)
        c_kv, k_pe = self.kv_a_proj_with_mqa(x).split([self.kvr, self.dr], -1)
        kv = self.kv_b_proj(self.kv_a_layernorm(c_kv)).view(B, T, self.nh, self.dn + self.dv)
        k_nope, v = kv.split([self.dn, self.dv], -1)
        q_pe, k_pe = rope(q_pe, cos, sin), rope(k_pe.view(B, T, 1, self.dr), cos, sin)
        s = (torch.einsum("bthd,bshd->bhts", q_nope, k_nope) + torch.einsum("bthd,bsxd->bhts", q_pe, k_pe)) * self.scale
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        o = torch.einsum("bhts,bshd->bthd", s.softmax(-1), v).reshape(B, T, self.nh * self.dv)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, H, inter):
        super().__init__()
        self.gate_proj = nn.Linear(H, inter, bias=False)
        self.up_proj = nn.Linear(H, inter, bias=False)
        self.down_proj = nn.Linear(inter, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """DeepSeek-V3's MoE: sigmoid affinities; experts chosen by affinity + e_score_correction_bias
    among the topk_group groups with the best top-2 sums (noaux_tc); gating weights are the chosen
    affinities normalised to sum 1, times routed_scaling_factor; plus the shared expert."""

    def __init__(self, c):
        super().__init__()
        H, I, E = c["hidden_size"], c["moe_intermediate_size"], c["n_routed_experts"]
        self.E, self.k, self.groups, self.topk_groups = E, c["num_experts_per_tok"], c["n_group"], c["topk_group"]
        self.scaling = c["routed_scaling_factor"]
        self.gate = nn.Linear(H, E, bias=False)
        # Steers the choice only; moved by the balancing rule, not by gradients.
        self.gate.register_buffer("e_score_correction_bias", torch.zeros(E))
        self.experts = nn.ModuleList(MLP(H, I) for _ in range(E))
        self.shared_experts = MLP(H, I * c["n_shared_experts"])
        self.load = None  # tokens per expert in the last forward (for the bias update)
        self.balance = None  # the last training forward's sequence-wise balance loss (before alpha)
        self.margin = None  # the last forward's smallest gap that decided a group or an expert

    def route(self, x):
        scores = torch.sigmoid(self.gate(x))
        N = scores.shape[0]
        choice = scores.detach() + self.gate.e_score_correction_bias
        group = choice.view(N, self.groups, -1).topk(2, -1).values.sum(-1)
        keep = torch.zeros_like(group, dtype=torch.bool).scatter(1, group.topk(self.topk_groups, -1).indices, True)
        choice = choice.masked_fill(~keep.repeat_interleave(self.E // self.groups, 1), float("-inf"))
        top = choice.topk(self.k + 1, -1)
        g = group.sort(-1, descending=True).values
        self.margin = min((g[:, self.topk_groups - 1] - g[:, self.topk_groups]).min().item(), (top.values[:, -2] - top.values[:, -1]).min().item())
        ids = top.indices[:, : self.k]
        w = scores.gather(1, ids)
        return ids, w / (w.sum(-1, keepdim=True) + 1e-20) * self.scaling, scores

    def forward(self, x):
        B, T, H = x.shape
        flat = x.reshape(-1, H)
        ids, w, scores = self.route(flat)
        out = self.shared_experts(flat)
        token = torch.arange(flat.shape[0]).repeat_interleave(self.k)
        eid, wt = ids.reshape(-1), w.reshape(-1)
        for e, expert in enumerate(self.experts):
            sel = (eid == e).nonzero().squeeze(1)
            if sel.numel():
                out = out.index_add(0, token[sel], expert(flat[token[sel]]) * wt[sel, None])
        if self.training:
            self.load = torch.bincount(eid, minlength=self.E).float()
            # f_i = E/(k T) * tokens of the sequence routed to i; P_i = mean over the sequence of the normalised affinity.
            f = torch.zeros(B, self.E).scatter_add_(1, ids.reshape(B, T * self.k), torch.ones(B, T * self.k)) * (self.E / (self.k * T))
            p = (scores / scores.sum(-1, keepdim=True)).view(B, T, self.E).mean(1)
            self.balance = (f * p).sum(-1).mean()
        return out.view(B, T, H)


class Block(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = MLA(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MoE(c) if moe else MLP(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


def is_moe_layer(c, i):
    return i >= c["first_k_dense_replace"] and i % c["moe_layer_freq"] == 0


class MTP(Block):
    """DeepSeek-V3's MTP module: h'_i = eh_proj([enorm(Emb(t_{i+1})); hnorm(h_i)]) through one more
    decoder block, then its own norm and the shared output head predict t_{i+2}. h_i is the main
    model's last hidden state after its final norm, and the block sees position i, as vLLM's MTP
    proposer feeds DeepSeek-V3's module."""

    def __init__(self, c):
        super().__init__(c, moe=is_moe_layer(c, c["num_hidden_layers"]))
        H = c["hidden_size"]
        self.enorm = RMSNorm(H, c["rms_norm_eps"])
        self.hnorm = RMSNorm(H, c["rms_norm_eps"])
        self.eh_proj = nn.Linear(2 * H, H, bias=False)
        self.shared_head = nn.Module()
        self.shared_head.norm = RMSNorm(H, c["rms_norm_eps"])

    def forward(self, emb_next, h, cos, sin):
        x = self.eh_proj(torch.cat([self.enorm(emb_next), self.hnorm(h)], -1))
        return self.shared_head.norm(super().forward(x, cos, sin))


class TinyV3(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        V, H = c["vocab_size"], c["hidden_size"]
        self.embed_tokens = nn.Embedding(V, H)
        self.layers = nn.ModuleList(Block(c, is_moe_layer(c, i)) for i in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(H, c["rms_norm_eps"])
        self.lm_head = nn.Linear(H, V, bias=False)
        self.mtp = MTP(c)
        self.register_buffer("inv_freq", rope_inv_freq(c), persistent=False)
        self.attention_factor = rope_attention_factor(c)

    def init_weights(self, gen):
        std = self.c["initializer_range"]
        # Output projections scaled down with depth (residual stream variance stays ~1 at the start).
        out_std = std / math.sqrt(2 * (self.c["num_hidden_layers"] + 1))
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue
            s = out_std if name.endswith(("o_proj.weight", "down_proj.weight")) else std
            with torch.no_grad():
                p.normal_(0, s, generator=gen)

    def cos_sin(self, T, dtype):
        # Angles in float32 as the runtime (and transformers) compute them; cos/sin in the model's dtype.
        ang = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq.float()[None, :]
        return ang.to(dtype).cos() * self.attention_factor, ang.to(dtype).sin() * self.attention_factor

    def forward(self, ids, mtp=True):
        """Logits [B, T, V] for the next token and, with mtp, [B, T-1, V] for the one after it."""
        T = ids.shape[1]
        cos, sin = self.cos_sin(T, self.lm_head.weight.dtype)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        h = self.norm(x)
        logits = self.lm_head(h)
        if not mtp:
            return logits, None
        return logits, self.lm_head(self.mtp(self.embed_tokens(ids[:, 1:]), h[:, :-1], cos[:-1], sin[:-1]))

    def moe_layers(self):
        return [m for m in self.modules() if isinstance(m, MoE)]


# ---- data ----


def build_data(bpe):
    """Token streams: training chapters (BOS text EOS) and chat turns (a verse asked, the next one
    answered, in the chat template's format), shuffled; held-out chapters in order."""
    train, held = kjv_bpe.split_chapters(kjv_bpe.chapters())
    rng = random.Random(SEED)
    docs = [kjv_bpe.BOS + kjv_bpe.chapter_text(v) + kjv_bpe.EOS for _, v in train]
    pairs = [(v[i], v[i + 1]) for _, v in train for i in range(len(v) - 1)]
    for a, b in rng.sample(pairs, CHAT_PAIRS):
        docs.append(kjv_bpe.BOS + kjv_bpe.USER + a + kjv_bpe.ASSISTANT + b + kjv_bpe.EOS)
    rng.shuffle(docs)
    stream = torch.tensor([t for d in docs for t in bpe.encode(d)], dtype=torch.long)
    held_stream = torch.tensor([t for _, v in held for t in bpe.encode(kjv_bpe.BOS + kjv_bpe.chapter_text(v) + kjv_bpe.EOS)], dtype=torch.long)
    return stream, held_stream, held


# ---- training ----


def train(steps, log):
    torch.manual_seed(SEED)
    bpe = kjv_bpe.load_tokenizer(MODEL_DIR)
    stream, held_stream, _ = build_data(bpe)
    bos_at = (stream[: len(stream) - SEQ_LEN] == bpe.bos).nonzero().squeeze(1)
    model = TinyV3(CONFIG)
    model.init_weights(torch.Generator().manual_seed(SEED))
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED + 1)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"params {n_params:,}; training tokens {len(stream):,}; held-out tokens {len(held_stream):,}; {steps} steps")
    t0 = time.time()
    seen = 0
    model.train()
    for step in range(steps):
        frac = step / steps
        lr = LR * min(1, (step + 1) / WARMUP) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        lam = MTP_WEIGHT[0] if frac < MTP_SWITCH else MTP_WEIGHT[1]
        # Half the rows start at a document's BOS, as prompts do.
        anywhere = torch.randint(0, len(stream) - SEQ_LEN, (BATCH,), generator=gen)
        starts = torch.where(torch.rand(BATCH, generator=gen) < 0.5, bos_at[torch.randint(len(bos_at), (BATCH,), generator=gen)], anywhere)
        ids = torch.stack([stream[s : s + SEQ_LEN] for s in starts])
        logits, mtp_logits = model(ids)
        V = logits.shape[-1]
        main = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        nextnext = F.cross_entropy(mtp_logits[:, :-1].reshape(-1, V), ids[:, 2:].reshape(-1))
        moes = model.moe_layers()
        balance = sum(m.balance for m in moes)
        loss = main + lam * nextnext + BALANCE_ALPHA * balance
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # Auxiliary-loss-free balancing: raise the bias of underloaded experts, lower the overloaded.
        with torch.no_grad():
            for m in moes:
                m.gate.e_score_correction_bias += BIAS_SPEED * torch.sign(m.load.mean() - m.load)
        seen += ids.numel()
        if (step + 1) % 50 == 0 or step == 0:
            imb = max((m.load.max() / m.load.mean()).item() for m in moes)
            log(f"step {step + 1} {time.time() - t0:.0f}s lr {lr:.2e} loss {main.item():.3f} mtp {nextnext.item():.3f} balance {balance.item():.3f} max load/mean {imb:.2f} tok/s {seen / (time.time() - t0):.0f}")
    log(f"trained {steps} steps, {seen:,} tokens ({seen / len(stream):.2f} epochs) in {time.time() - t0:.0f} s")
    torch.save({"config": CONFIG, "state": model.state_dict(), "steps": steps, "seconds": time.time() - t0}, MASTER)


# ---- FP8 e4m3 by hand: torch 1.13 has no float8 ----

# The 127 non-negative finite e4m3fn values by code (0x7f is NaN): 3 mantissa bits, bias 7, subnormals below 2^-6.
E4M3_VALUES = np.array([(c & 7) * 2.0**-9 if c < 8 else (1 + (c & 7) / 8) * 2.0 ** ((c >> 3) - 7) for c in range(127)])


def encode_e4m3(x):
    """float32 array -> e4m3fn codes as `.to(torch.float8_e4m3fn)`: nearest value, ties to the even
    code, subnormals kept, sign kept (also on zero); |x| in (448, 464] rounds to 448 (beyond is NaN there, refused here)."""
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x).astype(np.float64)
    assert np.all(a <= 464), "values past 464 would be e4m3's NaN"
    hi = np.minimum(np.searchsorted(E4M3_VALUES, a, side="left"), 126)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = a - E4M3_VALUES[lo], E4M3_VALUES[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return (code | np.where(np.signbit(x), 0x80, 0)).astype(np.uint8)


def decode_e4m3(q):
    q = np.asarray(q, dtype=np.uint8)
    return np.where(q & 0x80, -1.0, 1.0) * E4M3_VALUES[q & 0x7F]


def block_cast(w):
    """float32 [n, k] -> (e4m3 codes [n, k], float32 scales [ceil(n/128), ceil(k/128)]) as DeepGEMM's
    per_block_cast_to_fp8: amax per block (at least 1e-4), codes of x * (448 / amax), scale amax / 448,
    every step rounded to float32."""
    w = np.asarray(w, dtype=np.float32)
    n, k = w.shape
    q = np.empty((n, k), np.uint8)
    scales = np.empty(((n + 127) // 128, (k + 127) // 128), np.float32)
    for i in range(scales.shape[0]):
        for j in range(scales.shape[1]):
            blk = w[i * 128 : (i + 1) * 128, j * 128 : (j + 1) * 128]
            amax = np.maximum(np.abs(blk).max(), np.float32(1e-4))
            q[i * 128 : (i + 1) * 128, j * 128 : (j + 1) * 128] = encode_e4m3(blk * (np.float32(448) / amax))
            scales[i, j] = amax / np.float32(448)
    return q, scales


def block_dequant(q, scales):
    """float64 weights: code values times their block's scale (exact in float64)."""
    s = np.repeat(np.repeat(scales.astype(np.float64), 128, 0), 128, 1)[: q.shape[0], : q.shape[1]]
    return decode_e4m3(q) * s


def bf16_round(t):
    return t.float().to(torch.bfloat16)


# ---- export ----


def official_name(key, L):
    """The checkpoint name of a state_dict key: the MTP module is layer L."""
    if key.startswith("mtp."):
        return f"model.layers.{L}.{key[4:]}"
    return key if key.startswith("lm_head.") else "model." + key


def official(model):
    """float32 master tensors under DeepSeek-V3's checkpoint names, with the MTP layer's copies of
    the shared embedding and head (DeepSeek-V3's checkpoints store both)."""
    L = model.c["num_hidden_layers"]
    sd = {official_name(k, L): v.detach().float() for k, v in model.state_dict().items()}
    sd[f"model.layers.{L}.embed_tokens.weight"] = sd["model.embed_tokens.weight"]
    sd[f"model.layers.{L}.shared_head.head.weight"] = sd["lm_head.weight"]
    return sd


def load_official(model, sd):
    """Official-name tensors into the model (the MTP copies of embedding and head are the shared ones)."""
    L = model.c["num_hidden_layers"]
    model.load_state_dict({k: sd[official_name(k, L)] for k in model.state_dict()})


def is_fp8(name, t):
    # As DeepSeek-V3's checkpoints: every linear projection FP8; embeddings, head, norms, router, bias not.
    return t.dim() == 2 and not any(s in name for s in ("embed_tokens", "lm_head", "shared_head.head", "norm", "mlp.gate.weight"))


def is_bf16(name):
    return any(s in name for s in ("embed_tokens", "lm_head", "shared_head.head"))


def save_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, bytes)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, shape, b = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def export_checkpoint(master):
    """Writes model.safetensors + config.json; returns the dequantized weights (float64, by official name)."""
    files, deq = {}, {}
    for k, v in master.items():
        if is_fp8(k, v):
            q, s = block_cast(v.numpy())
            files[k] = ("F8_E4M3", q.shape, q.tobytes())
            files[k.replace(".weight", ".weight_scale_inv")] = ("F32", s.shape, s.tobytes())
            deq[k] = torch.from_numpy(block_dequant(q, s))
        elif is_bf16(k):
            b = bf16_round(v)
            files[k] = ("BF16", v.shape, b.view(torch.int16).numpy().tobytes())
            deq[k] = b.double()
        else:
            files[k] = ("F32", v.shape, v.numpy().astype(np.float32).tobytes())
            deq[k] = v.double()
    save_safetensors(os.path.join(MODEL_DIR, "model.safetensors"), files)
    bpe = kjv_bpe.load_tokenizer(MODEL_DIR)
    with open(os.path.join(MODEL_DIR, "config.json"), "w") as f:
        json.dump({**CONFIG, "bos_token_id": bpe.bos, "eos_token_id": bpe.eos}, f, indent=2)
    return deq, files


def write_fp8_fixture(master, files):
    """Cases for the TypeScript encoder to reproduce bit for bit: every e4m3 value, every midpoint
    between neighbours (ties) and one float32 step either side, the subnormal and saturation edges,
    random values; and two master weights whose cast must give the shipped bytes and scales: [144, 256]
    (full blocks and a partial row of blocks) and an MTP layer expert's [256, 48] (partial columns)."""
    v = E4M3_VALUES.astype(np.float32)
    mids = ((E4M3_VALUES[:-1] + E4M3_VALUES[1:]) / 2).astype(np.float32)
    edge = np.concatenate([v, mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf)), np.float32([2.0**-10, 2.0**-11, 1e-45, 448.00003, 455.99997, 456, 463.99997, 464])])
    rnd = np.random.default_rng(SEED).standard_normal(20000).astype(np.float32) * np.float32(120)
    x = np.concatenate([edge, -edge, np.float32([-0.0]), np.clip(rnd, -464, 464)]).astype(np.float32)
    out = {"e4m3.x": ("F32", x.shape, x.tobytes()), "e4m3.q": ("F8_E4M3", x.shape, encode_e4m3(x).tobytes())}
    L = CONFIG["num_hidden_layers"]
    for name in ("model.layers.1.self_attn.kv_a_proj_with_mqa.weight", f"model.layers.{L}.mlp.experts.0.down_proj.weight"):
        w = master[name].numpy().astype(np.float32)
        out[name] = ("F32", w.shape, w.tobytes())
        assert files[name][2] == block_cast(w)[0].tobytes()
    save_safetensors(FP8_FIXTURE, out)


# ---- evaluation ----


@torch.no_grad()
def evaluate(model, held_stream, train_stream, log):
    """Held-out perplexity of the model and of a unigram model (training counts, add-one) on the same
    tokens; next-token and MTP next-next-token accuracy."""
    model.eval()
    V = CONFIG["vocab_size"]
    counts = torch.bincount(train_stream, minlength=V).double() + 1
    unigram = (counts / counts.sum()).log()
    chunks = held_stream[: len(held_stream) // SEQ_LEN * SEQ_LEN].view(-1, SEQ_LEN)
    nll = uni = n = right = n2 = right2 = agree = 0
    for ids in chunks.split(16):
        logits, mtp = model(ids)
        tgt = ids[:, 1:]
        nll += F.cross_entropy(logits[:, :-1].reshape(-1, V).double(), tgt.reshape(-1), reduction="sum").item()
        uni -= unigram[tgt].sum().item()
        n += tgt.numel()
        right += (logits[:, :-1].argmax(-1) == tgt).sum().item()
        guess2 = mtp[:, :-1].argmax(-1)
        right2 += (guess2 == ids[:, 2:]).sum().item()
        # What speculative decoding would accept: the MTP guess equals the main model's own next prediction.
        agree += (guess2 == logits[:, 1:-1].argmax(-1)).sum().item()
        n2 += guess2.numel()
    r = {
        "heldout_tokens": n,
        "perplexity": math.exp(nll / n),
        "unigram_perplexity": math.exp(uni / n),
        "next_token_accuracy": right / n,
        "mtp_next_next_accuracy": right2 / n2,
        "mtp_agrees_with_main": agree / n2,
    }
    log(json.dumps(r))
    return r


@torch.no_grad()
def generate(model, ids, n, temperature=0.0, gen=None):
    ids = list(ids)
    for _ in range(n):
        logits = model(torch.tensor([ids[-SEQ_LEN:]]), mtp=False)[0][0, -1]
        if temperature == 0:
            t = int(logits.argmax())
        else:
            t = int(torch.multinomial((logits.double() / temperature).softmax(-1), 1, generator=gen))
        ids.append(t)
    return ids


def word_rate(model, bpe, held, log):
    """Share of generated words in wamerican's list (lower-cased, punctuation stripped at the ends):
    40 new tokens after the first five words of 50 held-out verses, greedy and sampled (temperature 0.8)."""
    words = {w.strip().lower() for w in open("/usr/share/dict/american-english", encoding="utf-8")}
    rng = random.Random(SEED + 2)
    verses = [v for _, vs in held for v in vs]
    prompts = [" ".join(v.split()[:5]) for v in rng.sample(verses, 50)]
    gen = torch.Generator().manual_seed(SEED + 3)
    out, samples = {}, []
    for mode, temp in (("greedy", 0.0), ("sampled", 0.8)):
        total = known = 0
        for p in prompts:
            ids = bpe.encode(kjv_bpe.BOS + p)
            text = bpe.decode(generate(model, ids, 40, temp, gen)[len(ids) :]).split(kjv_bpe.EOS)[0]
            if len(samples) < 3 and mode == "greedy":
                samples.append(p + text)
            for w in text.split():
                w = w.strip(".,;:?!()'\"-").lower()
                if w:
                    total += 1
                    known += w in words
        out[mode] = {"words": total, "in_wamerican": known / total}
    # The ceiling: the held-out text itself.
    ref = [w.strip(".,;:?!()'\"-").lower() for v in verses for w in v.split()]
    out["heldout_text"] = {"words": len(ref), "in_wamerican": sum(w in words for w in ref if w) / len(ref)}
    log(json.dumps(out))
    for s in samples:
        log("sample: " + s)
    return out, samples


def routing_margin(model, ids):
    """Smallest gap between a kept and a dropped group, or a chosen and an excluded expert, over the MoE
    layers and positions of one forward: where tiny, float32 could route differently from float64."""
    with torch.no_grad():
        model(torch.tensor([ids]), mtp=False)
    return min(layer.mlp.margin for layer in model.layers if isinstance(layer.mlp, MoE))


def write_reference(deq, bpe, held, log):
    """reference.json: a held-out prompt, float64 logits at every prompt position from this code's
    forward pass over the dequantized shipped weights, and 10 greedy tokens. The prompt is the first
    held-out verse opening whose routing and greedy choices are clear (float32 on a GPU must make the same)."""
    model = TinyV3(CONFIG).double()
    load_official(model, deq)
    model.eval()
    for _, vs in held:
        for v in vs:
            prompt = " ".join(v.split()[:6])
            ids = bpe.encode(kjv_bpe.BOS + prompt)
            full = generate(model, ids, 10)
            with torch.no_grad():
                logits = model(torch.tensor([full]), mtp=False)[0][0]
            top2 = logits[len(ids) - 1 :].topk(2, -1).values
            gap = (top2[:, 0] - top2[:, 1]).min().item()
            margin = routing_margin(model, full)
            if gap > 5e-2 and margin > 1e-4:
                ref = {
                    "prompt": prompt,
                    "prompt_ids": ids,
                    "logits": logits[: len(ids)].tolist(),
                    "greedy_ids": full[len(ids) :],
                    "note": "float64 logits of scripts/train/train_tiny.py's forward pass over the dequantized weights of this checkpoint",
                }
                with open(os.path.join(MODEL_DIR, "reference.json"), "w") as f:
                    json.dump(ref, f)
                log(f"reference: {prompt!r} -> {bpe.decode(full[len(ids):])!r}; greedy top-2 gap {gap:.3g}, routing margin {margin:.3g}")
                return
    raise RuntimeError("no held-out prompt with clear routing and greedy choices")


def export(log):
    ck = torch.load(MASTER)
    model = TinyV3(ck["config"])
    model.load_state_dict(ck["state"])
    master = official(model)
    deq, files = export_checkpoint(master)
    write_fp8_fixture(master, files)
    bpe = kjv_bpe.load_tokenizer(MODEL_DIR)
    train_stream, held_stream, held = build_data(bpe)
    n_params = sum(v.numel() for k, v in master.items() if not re.search(rf"layers\.{CONFIG['num_hidden_layers']}\.(embed_tokens|shared_head\.head)", k))
    log(f"trained {ck['steps']} steps in {ck['seconds']:.0f} s; {n_params:,} parameters (MTP's shared embedding and head once); model.safetensors {os.path.getsize(os.path.join(MODEL_DIR, 'model.safetensors')):,} bytes")
    # The shipped weights, dequantized, in float32: what the numbers below describe.
    shipped = TinyV3(CONFIG)
    load_official(shipped, {k: v.float() for k, v in deq.items()})
    evaluate(shipped, held_stream, train_stream, log)
    word_rate(shipped, bpe, held, log)
    write_reference(deq, bpe, held, log)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())

    def log(msg):
        print(msg, flush=True)

    if not args.export_only:
        train(args.steps, log)
    export(log)


if __name__ == "__main__":
    main()
