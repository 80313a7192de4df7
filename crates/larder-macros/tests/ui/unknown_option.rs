#[larder::cached(ttl = "1h", colour = "red")]
async fn f(x: u32) -> u32 {
    x
}

fn main() {}
