// Options that need an async fn.
#[larder::cached(soft_timeout = "100ms")]
fn plain(x: u32) -> u32 {
    x
}

// A timeout needs a Result to report it in.
#[larder::cached(hard_timeout = "1s")]
async fn no_result(x: u32) -> u32 {
    x
}

// ...and an error type that can carry it.
#[derive(Clone, Debug)]
struct NoTimeoutHere;

#[larder::cached(hard_timeout = "1s")]
async fn error_without_from(x: u32) -> Result<u32, NoTimeoutHere> {
    Ok(x)
}

// Options for other return types.
#[larder::cached(cache_err = |_e: &()| true)]
async fn not_a_result(x: u32) -> u32 {
    x
}

#[larder::cached(cache_none)]
async fn not_an_option(x: u32) -> u32 {
    x
}

fn main() {}
