// The region a small-m workgroup works on (grid z through mode_z) and its rows: read once by
// invocation 0 and shared. (NO_REGION, 0) when the grid entry names none.
var<workgroup> region_wg: vec2<u32>;

fn workgroup_region(zi: u32, lid: u32) -> vec2<u32> {
  if (lid == 0u) {
    let zz = mode_z(zi);
    var rz = 0u;
    if (zz != NO_REGION) { rz = mode_rows(zz); }
    region_wg = vec2<u32>(zz, rz);
  }
  return workgroupUniformLoad(&region_wg);
}
