pub fn default_spec(_rootless: bool) -> String {
    String::new()
}
