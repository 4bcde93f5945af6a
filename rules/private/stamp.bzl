"""Whether an action stamps: the `stamp` attribute (-1: follow `--stamp`) and the flag."""

visibility(["//rules/..."])

StampSettingInfo = provider(
    doc = "Whether the build runs with `--stamp`.",
    fields = {"enabled": "bool"},
)

def _stamp_setting_impl(ctx):
    return [StampSettingInfo(enabled = ctx.attr.enabled)]

stamp_setting = rule(
    implementation = _stamp_setting_impl,
    doc = "Reports `--stamp` (set `enabled` with a select on a config_setting of the flag).",
    attrs = {"enabled": attr.bool(doc = "Whether --stamp is set.")},
)

# The attributes of a rule that may stamp (add them to its attrs).
STAMP_ATTRS = {
    "stamp": attr.int(
        default = -1,
        values = [-1, 0, 1],
        doc = "Whether to fill `{KEY}` templates from the workspace status: 1 always, 0 never, " +
              "-1 (the default) only when building with `--stamp`. Unstamped builds never read " +
              "the status, so they stay cacheable.",
    ),
    "_stamp_flag": attr.label(
        default = Label("//rules/private:stamp"),
        providers = [StampSettingInfo],
        doc = "Whether the build has --stamp.",
    ),
}

def should_stamp(ctx):
    """Whether this target stamps (its `stamp` attribute, else `--stamp`).

    Args:
        ctx: rule context of a rule with STAMP_ATTRS.

    Returns:
        bool.
    """
    if ctx.attr.stamp == 1:
        return True
    if ctx.attr.stamp == 0:
        return False
    return ctx.attr._stamp_flag[StampSettingInfo].enabled
