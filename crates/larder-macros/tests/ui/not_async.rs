#[larder::cached]
fn f(x: u32) -> u32 {
    x
}

#[larder::cached(hard_timeout = "1s")]
async fn g(x: u32) -> u32 {
    x
}

fn main() {}
