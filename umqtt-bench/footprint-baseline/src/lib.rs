//! nostd-check's shape without the client: the same exported function name
//! and C functions, each called once. See umqtt-bench's `footprint` module.
#![no_std]

unsafe extern "C" {
    fn port_now_ms() -> u64;
    fn port_send(buf: *const u8, len: usize) -> isize;
    fn port_recv(buf: *mut u8, len: usize) -> isize;
}

/// Calls each C function once; returns 0.
#[unsafe(no_mangle)]
pub extern "C" fn umqtt_demo(count: *mut u32) -> i32 {
    let mut byte = [0u8; 1];
    // SAFETY: plain C functions; the pointers come from a live array.
    let sum = unsafe {
        port_now_ms() as isize + port_send(byte.as_ptr(), 1) + port_recv(byte.as_mut_ptr(), 1)
    };
    if !count.is_null() {
        // SAFETY: the caller passes a valid pointer or null.
        unsafe { *count = sum as u32 };
    }
    0
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
