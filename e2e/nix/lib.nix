# Test closures without nixpkgs: a static busybox (Debian's busybox-static, /bin/busybox) is the
# only builder. It is imported as a directory so that `${bb}/busybox sh` resolves its applet;
# Debian's build runs its applets (cat, mkdir, ...) from the shell without a PATH.
rec {
  bb = builtins.path {
    name = "busybox-static";
    path = /bin;
    filter = path: type: baseNameOf path == "busybox";
  };

  # A derivation built by a busybox shell script.
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "${bb}/busybox";
    args = [ "sh" "-c" "mkdir -p $out; ${script}" ];
  };

  # An executable script $out/bin/NAME run by that busybox shell (so busybox is in its closure).
  script = name: body: mk name ''
    mkdir -p $out/bin
    cat > $out/bin/${name} <<'SCRIPT_EOF'
    #!${bb}/busybox sh
    ${body}
    SCRIPT_EOF
    chmod 0555 $out/bin/${name}
  '';

  # bin/NAME -> TARGET symlinks (for copy_to_root: the programs appear at /bin/NAME).
  rootEnv = name: links: mk name (builtins.concatStringsSep "\n" ([ "mkdir -p $out/bin" ] ++
    map (l: "ln -s ${l.target} $out/bin/${l.name}") links));
}
