#[larder::cached(key = "weather:{town}")]
async fn weather(city: String) -> String {
    city
}

#[larder::cached(key = "weather:{city}", skip(city))]
async fn skipped(city: String) -> String {
    city
}

fn main() {}
