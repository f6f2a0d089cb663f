# exo's stand-in for VM tests: a package with bin/exo and a version, like exo's own flake output.
{
  runCommand,
  python3,
  version ? "1.0.0-stub",
}:
runCommand "exo-${version}"
  {
    inherit version;
    meta.mainProgram = "exo";
  }
  ''
    mkdir -p $out/bin
    { echo "#!${python3.interpreter}"; cat ${./stub-exo.py}; } > $out/bin/exo
    chmod +x $out/bin/exo
  ''
