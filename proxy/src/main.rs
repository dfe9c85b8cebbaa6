fn main() -> anyhow::Result<()> {
    anyhow::bail!("bay-proxy: not built yet; see docs/architecture.md")
}
