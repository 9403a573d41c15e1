# Sourced on the accelerator machine (see README, "Developing"): Deno at /tmp/deno, Node at /tmp/node
# with Dawn's addon in node_modules/webgpu, the NVIDIA Vulkan driver selected. Carry what the run
# needs from .gpu/ (the loader debs and env values always; deno.xz and/or node/): the carry limit
# (64 MiB) does not fit both runtimes beside the repository.
for f in .gpu/*.deb .gpu/debs/*.deb; do [ -f "$f" ] &&  dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export HOME=/tmp DENO_DIR=/tmp/deno-cache
if [ -f .gpu/deno.xz ] && [ ! -x /tmp/deno ]; then xz -dc .gpu/deno.xz > /tmp/deno.part && chmod +x /tmp/deno.part && mv /tmp/deno.part /tmp/deno; fi
if [ -f .gpu/node/node.xz ] && [ ! -x /tmp/node ]; then
  xz -dc .gpu/node/node.xz > /tmp/node.part && chmod +x /tmp/node.part && mv /tmp/node.part /tmp/node
fi
if [ -d .gpu/node/webgpu ] && [ ! -f node_modules/webgpu/dist/linux-x64/dawn.node ]; then
  mkdir -p node_modules && cp -r .gpu/node/webgpu node_modules/ && xz -d node_modules/webgpu/dist/linux-x64/dawn.node.xz
fi
