// FMA-rate ceiling: 8 independent vec4 chains x = fma(x, a, b) per invocation (32 FMAs per
// iteration, enough independent work to hide latency). With a = b = 0.5 every chain tends to 1,
// so the output (sum of the 32 lanes) is about 32: checkable, and a, b come from a uniform so the
// compiler cannot fold the loop. Holes: WG, T (f32 or f16) (prelude), Params (typegpu struct).
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let a = vec4<T>(T(params.a));
  let b = vec4<T>(T(params.b));
  let s = T(f32(gid.x & 15u) * 0.0625);
  var x0 = vec4<T>(s);
  var x1 = vec4<T>(s + T(0.1));
  var x2 = vec4<T>(s + T(0.2));
  var x3 = vec4<T>(s + T(0.3));
  var x4 = vec4<T>(s + T(0.4));
  var x5 = vec4<T>(s + T(0.5));
  var x6 = vec4<T>(s + T(0.6));
  var x7 = vec4<T>(s + T(0.7));
  for (var i = 0u; i < params.iters; i = i + 1u) {
    x0 = fma(x0, a, b);
    x1 = fma(x1, a, b);
    x2 = fma(x2, a, b);
    x3 = fma(x3, a, b);
    x4 = fma(x4, a, b);
    x5 = fma(x5, a, b);
    x6 = fma(x6, a, b);
    x7 = fma(x7, a, b);
  }
  let t = (x0 + x1) + (x2 + x3) + (x4 + x5) + (x6 + x7);
  dst[gid.x] = f32(t.x) + f32(t.y) + f32(t.z) + f32(t.w);
}
