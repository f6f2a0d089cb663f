# `pkgs` for the sandbox hosts, without nixpkgs: nixpkgs' trivial builders made with plain
# derivations (built by /bin/sh), and the host's own programs (the container's Debian ones)
# in store paths, as packages. Only what the services.exo module and ./systemd.nix use.
{ system, toolkitSource }:
let
  build =
    name: script: env:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          script
        ];
        PATH = "/usr/bin:/bin";
      }
      // env
    );

  # nixpkgs' writeShellScript runs under its bash; here the host's
  writeScript =
    name: text:
    build name ''
      printf '#!/bin/bash\n%s' "$text" > "$out"
      chmod 555 "$out"
    '' { inherit text; };

  # A package of links to programs of the host (absolute paths in the container), named as
  # the nixpkgs package it stands for: programs are names in /usr/bin, or name = target.
  hostPrograms =
    pname: version: programs:
    let
      links = map (p: if builtins.isString p then "${p}=/usr/bin/${p}" else "${p.name}=${p.target}") programs;
    in
    build "${pname}-${version}" ''
      mkdir -p "$out/bin"
      for l in $links; do ln -s "''${l#*=}" "$out/bin/''${l%%=*}"; done
    '' { links = builtins.concatStringsSep " " links; }
    // {
      inherit pname version;
      meta.mainProgram = pname;
    };
in
rec {
  writeShellScript = writeScript;
  writeShellScriptBin =
    name: text:
    build name ''
      mkdir -p "$out/bin"
      printf '#!/bin/bash\n%s' "$text" > "$out/bin/$binName"
      chmod 555 "$out/bin/$binName"
    '' {
      inherit text;
      binName = name;
    }
    // {
      meta.mainProgram = name;
    };
  writeText =
    name: text:
    build name ''printf '%s' "$text" > "$out"'' { inherit text; };

  coreutils = hostPrograms "coreutils" "debian" [
    "basename" "cat" "chmod" "chown" "cp" "cut" "date" "df" "dirname" "du" "echo" "env" "false"
    "head" "id" "ln" "ls" "mkdir" "mktemp" "mv" "printf" "readlink" "realpath" "rm" "rmdir"
    "sha256sum" "sleep" "sort" "stat" "sync" "tail" "tee" "test" "touch" "tr" "true" "uniq" "wc"
  ];
  bash = hostPrograms "bash" "debian" [
    "bash"
    {
      name = "sh";
      target = "/usr/bin/bash";
    }
  ];
  gnutar = hostPrograms "gnutar" "debian" [ "tar" ];
  gzip = hostPrograms "gzip" "debian" [ "gzip" "gunzip" ];
  findutils = hostPrograms "findutils" "debian" [ "find" "xargs" ];
  gnugrep = hostPrograms "gnugrep" "debian" [ "grep" ];
  gnused = hostPrograms "gnused" "debian" [ "sed" ];
  curl = hostPrograms "curl" "debian" [ "curl" ];
  systemd = hostPrograms "systemd" "252" [ "systemctl" "journalctl" "systemd-run" "systemd-tmpfiles" ];
  nix = hostPrograms "nix" "2.8" [ "nix" "nix-store" "nix-env" "nix-instantiate" ];
  # what a pull fetches its config repository with
  git = hostPrograms "git" "debian" [ "git" ];
  openssh = hostPrograms "openssh" "debian" [ "ssh" ];

  # this flake's overlay adds pkgs.exo-deploy: the committed bundle (nix/package.nix), run by
  # the host's Node instead of nixpkgs' nodejs
  exo-deploy =
    build "exo-deploy-0.1.0" ''
      mkdir -p "$out/bin" "$out/lib/exo-deploy/dist"
      cp "$src/package.json" "$out/lib/exo-deploy/"
      cp -R "$src/dist/cli" "$out/lib/exo-deploy/dist/"
      printf '#!/bin/sh\nexec /usr/bin/node %s "$@"\n' "$out/lib/exo-deploy/dist/cli/cli.js" > "$out/bin/exo-deploy"
      chmod 555 "$out/bin/exo-deploy"
    '' { src = toolkitSource; }
    // {
      pname = "exo-deploy";
      version = "0.1.0";
      meta.mainProgram = "exo-deploy";
    };
}
