//! rules-image-tool: the one binary behind rules_image's actions and `bazel run` targets. The
//! code is the library (`lib.rs` has the map of its modules).

fn main() -> std::process::ExitCode {
    rules_image_tool::main()
}
