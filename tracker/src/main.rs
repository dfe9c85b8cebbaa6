fn main() -> anyhow::Result<()> {
    anyhow::bail!("bay-tracker: not built yet")
}
