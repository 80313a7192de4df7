#[larder::cached(ttl = "1 fortnight")]
async fn f(x: u32) -> u32 {
    x
}

fn main() {}
