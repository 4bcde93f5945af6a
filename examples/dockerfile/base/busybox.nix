# A minimal busybox userland built with Nix, offline: /bin/<applet> -> the busybox store path.
# Needs /bin/busybox from a static busybox (Debian: busybox-static) on the machine running Nix.
let
  bb = builtins.path {
    name = "busybox-static";
    path = /bin;
    filter = path: type: baseNameOf path == "busybox";
  };
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "${bb}/busybox";
    args = [ "sh" "-c" "mkdir -p $out; ${script}" ];
  };
in {
  # The image's root: every applet as /bin/<name>, plus /tmp.
  root = mk "busybox-root" ''
    mkdir -p $out/bin $out/tmp
    for applet in $(${bb}/busybox --list); do
      ln -s ${bb}/busybox $out/bin/$applet
    done
  '';
}
