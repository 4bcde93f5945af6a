"""Unit tests of the platform matcher: every case of platform_cases.bzl, and the parser."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load("//rules/private:platform.bzl", "parse_platform", "platform", "platform_string", "select_platform")
load("//rules/private:platform_cases.bzl", "PLATFORM_CASES")
load(":suite.bzl", "named_suite")

def _cases_test_impl(ctx):
    env = unittest.begin(ctx)
    asserts.true(env, len(PLATFORM_CASES) > 20, "PLATFORM_CASES is nearly empty")
    for case in PLATFORM_CASES:
        candidates = [parse_platform(c) for c in case["candidates"]]
        want = parse_platform(case["want"])
        asserts.equals(
            env,
            case["pick"],
            select_platform(candidates, want),
            "select_platform(%s, %s)" % (case["candidates"], case["want"]),
        )
    return unittest.end(env)

cases_test = unittest.make(_cases_test_impl)

def _candidates_without_os_test_impl(ctx):
    env = unittest.begin(ctx)
    want = platform("linux", "amd64")
    asserts.equals(env, None, select_platform([platform("", "amd64")], want))
    asserts.equals(env, None, select_platform([platform("linux", "")], platform("linux", "")))
    asserts.equals(env, None, select_platform([platform("unknown", "unknown")], platform("unknown", "unknown")))

    # Providers have the same fields as platform(): ImageManifestInfo-like structs match too.
    images = [struct(os = "linux", architecture = "arm64", variant = ""), struct(os = "linux", architecture = "amd64", variant = "")]
    asserts.equals(env, 1, select_platform(images, want))
    return unittest.end(env)

candidates_without_os_test = unittest.make(_candidates_without_os_test_impl)

def _parse_test_impl(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, platform("linux", "arm64", "v8"), parse_platform("linux/arm64/v8"))
    asserts.equals(env, platform("linux", "amd64"), parse_platform("linux/amd64"))
    for bad in ["linux", "linux/", "/amd64", "linux/arm/v7/x", "linux//v7", ""]:
        asserts.equals(env, None, parse_platform(bad), "parse_platform(%r)" % bad)
    for text in ["linux/amd64", "linux/arm64/v8", "windows/amd64"]:
        asserts.equals(env, text, platform_string(parse_platform(text)))
    return unittest.end(env)

parse_test = unittest.make(_parse_test_impl)

def platform_test_suite(name):
    """The platform tests.

    Args:
        name: the test_suite's name.
    """
    named_suite(name, {
        "cases": cases_test,
        "candidates_without_os": candidates_without_os_test,
        "parse": parse_test,
    })
