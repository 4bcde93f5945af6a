"""file_metadata(): the metadata of a layer's entries, as the layer rules' attributes take it."""

load(":labels.bzl", "display_label")

visibility(["//rules/..."])

def file_metadata(
        *,
        mode = None,
        uid = None,
        gid = None,
        uname = None,
        gname = None,
        mtime = None,
        pax_records = None,
        capabilities = None):
    """Metadata for `image_layer`'s `default_metadata` and `file_metadata` attributes.

    Every argument is optional; unset fields keep the layer's defaults (mode 0644 for files,
    0755 for executables and directories, owner root (0:0) with no names, mtime 0, no pax
    records).

    See `image_layer` for an example and for how defaults, patterns and paths combine.

    Args:
        mode: Octal permission bits as a string, e.g. "0755" (at most "07777", so setuid,
            setgid and sticky bits are allowed).
        uid: Numeric owner.
        gid: Numeric group.
        uname: Owner name recorded in the tar (engines use the numeric ids; names are for tools
            that show them).
        gname: Group name recorded in the tar.
        mtime: Modification time: seconds since the Unix epoch (int), or an RFC 3339 UTC time
            string such as "2024-05-01T12:00:00Z".
        pax_records: Dict of extra PAX records, e.g. `{"SCHILY.xattr.user.origin": "ci"}`
            (extended attributes are `SCHILY.xattr.<name>`; values are text). Records the tar
            header already carries (path, size, uid, gid, uname, gname, mtime, ...) are refused.
        capabilities: File capabilities granted as permitted and effective, like
            `setcap cap_net_bind_service=ep`: a list of names such as "cap_net_bind_service"
            (written as the `security.capability` extended attribute). Regular files only.

    Returns:
        A JSON string (the layer rules' attributes store it verbatim).
    """
    out = {}
    if mode != None:
        if type(mode) != "string":
            fail("file_metadata: mode must be an octal string such as \"0644\", got %r" % (mode,))
        out["mode"] = mode
    for name, value in [("uid", uid), ("gid", gid)]:
        if value != None:
            if type(value) != "int" or value < 0:
                fail("file_metadata: %s must be a non-negative int, got %r" % (name, value))
            out[name] = value
    for name, value in [("uname", uname), ("gname", gname)]:
        if value != None:
            if type(value) != "string":
                fail("file_metadata: %s must be a string, got %r" % (name, value))
            out[name] = value
    if mtime != None:
        if type(mtime) not in ["int", "string"]:
            fail("file_metadata: mtime must be seconds (int) or an RFC 3339 string, got %r" % (mtime,))
        out["mtime"] = mtime
    if pax_records != None:
        if type(pax_records) != "dict":
            fail("file_metadata: pax_records must be a dict of strings, got %r" % (pax_records,))
        out["pax_records"] = pax_records
    if capabilities != None:
        if type(capabilities) != "list":
            fail("file_metadata: capabilities must be a list of names, got %r" % (capabilities,))
        out["capabilities"] = capabilities
    return json.encode(out)

def file_metadata_args(ctx, args, default_metadata, per_path, modes = {}):
    """Adds a layer's metadata settings to the tool's arguments.

    Args:
        ctx: rule context (for messages).
        args: Args of the layer action.
        default_metadata: JSON from file_metadata(), or "".
        per_path: dict of path or pattern -> JSON from file_metadata().
        modes: dict of path -> octal mode (the older shorthand for a mode-only entry).
    """
    if default_metadata:
        args.add("--default-metadata", default_metadata)
    for path, mode in modes.items():
        if path in per_path:
            fail("%s: %s has both a mode in `modes` and an entry in `file_metadata`; set the mode in file_metadata" % (display_label(ctx.label), path))
        args.add("--file-metadata", "%s\t%s" % (path, json.encode({"mode": mode})))
    for path, value in per_path.items():
        if "\t" in path or "\n" in path:
            fail("%s: file_metadata path %r contains a tab or newline" % (display_label(ctx.label), path))
        args.add("--file-metadata", "%s\t%s" % (path, value))
