// Grid z is the region itself (dense, contiguous, masked over every group).
const NO_REGION = 0xffffffffu;

fn mode_z(zi: u32) -> u32 {
  return zi;
}
