# Sourced on the accelerator machine (see README, "Benchmarks"): Deno at /tmp/deno, Node at /tmp/node
# with Dawn's addon in node_modules/webgpu, the NVIDIA Vulkan driver selected. Needs .gpu/ carried.
source .gpu/env.sh
if [ -f .gpu/node/node.xz ] && [ ! -x /tmp/node ]; then
  xz -dc .gpu/node/node.xz > /tmp/node && chmod +x /tmp/node
  mkdir -p node_modules && cp -r .gpu/node/webgpu node_modules/ && xz -d node_modules/webgpu/dist/linux-x64/dawn.node.xz
fi
