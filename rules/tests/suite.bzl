"""named_suite: unit and analysis tests with readable names, under one test_suite."""

def named_suite(name, tests, **kwargs):
    """Instantiates `<name>_<key>` for every key -> test rule of `tests`, and a test_suite `name`.

    Args:
        name: the test_suite's name.
        tests: dict of name suffix -> test rule (from unittest.make or analysistest.make) that
            needs no attributes but `name`.
        **kwargs: passed to every test (e.g. target_under_test is set per test elsewhere).
    """
    names = []
    for suffix, test in tests.items():
        test_name = "%s_%s" % (name, suffix)
        test(name = test_name, size = "small", **kwargs)
        names.append(":" + test_name)
    native.test_suite(name = name, tests = names)
