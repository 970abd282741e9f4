# shellcheck shell=bash
# Sourced by the build scripts: ccache settings that let a fresh clone elsewhere (CI) reuse the
# compilations of an earlier clone on the same machine. ccache keys on absolute paths unless told
# the project root (CCACHE_BASEDIR), and on the working directory whenever debug information is
# generated (CCACHE_NOHASHDIR turns that off: the reused objects then name the first clone's
# build folder in their debug information, which no test reads).
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=1
