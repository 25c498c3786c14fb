fn main() {
    println!("swpt-trade");
}
