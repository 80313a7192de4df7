#[derive(Clone)]
struct Report {
    rows: u32,
}

#[larder::cached]
async fn report(id: u32) -> Report {
    Report { rows: id }
}

fn main() {}
