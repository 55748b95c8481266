# Shared by scripts/build-pgo, scripts/bench-e2e and scripts/bench-instructions (sourced, not
# run): build_pgo builds target/pgo/release/alertctx against the profile that
# scripts/build-pgo took (nothing to do when build-pgo has just built it; after a change to
# the code it builds the new code with the old profile, and build-pgo takes a new one).

pgo_dir=$PWD/target/pgo
pgo_profile=$pgo_dir/alertctx.profdata
pgo_bin=$pgo_dir/release/alertctx
build_pgo() {
  [ -e "$pgo_profile" ] || {
    echo "$(basename "$0"): --pgo needs $pgo_profile; run scripts/build-pgo first" >&2
    exit 1
  }
  RUSTFLAGS="-Cprofile-use=$pgo_profile" \
    cargo build --release --locked --quiet --target-dir "$pgo_dir" --bin alertctx
}
