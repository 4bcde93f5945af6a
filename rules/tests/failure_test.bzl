"""Analysis-failure tests: a target that must fail analysis, and the message it must fail with."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")

def _failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, ctx.attr.message)
    return analysistest.end(env)

_ATTRS = {"message": attr.string(mandatory = True, doc = "A part of the expected error message.")}

# In the configuration the target under test is analysed in (the host platform, usually).
failure_test = analysistest.make(_failure_test_impl, expect_failure = True, attrs = _ATTRS)

# With --platforms=//rules/tests:linux_amd64, for messages that name the target platform.
failure_on_amd64_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = _ATTRS,
    config_settings = {"//command_line_option:platforms": str(Label("//rules/tests:linux_amd64"))},
)

# With --platforms=//rules/tests:no_os_cpu, a platform without os and cpu constraints.
failure_on_bare_platform_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = _ATTRS,
    config_settings = {"//command_line_option:platforms": str(Label("//rules/tests:no_os_cpu"))},
)

def failure_tests(name, cases):
    """One analysis-failure test per case, and a test_suite `name` over them.

    Args:
        name: the test_suite's name.
        cases: dict of target (in this package, tagged manual) -> (test rule, message part).
    """
    tests = []
    for target, (test, message) in cases.items():
        test_name = "%s_%s" % (name, target)
        test(name = test_name, size = "small", target_under_test = ":" + target, message = message)
        tests.append(":" + test_name)
    native.test_suite(name = name, tests = tests)
