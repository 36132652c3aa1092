# Sourced by klpsim-capture.sh (and its tests): /proc/kallsyms, as read into
# a file, turned into the JSON members of arm64-stack-capture/v1. Needs
# $lib, the directory of the awk programs.

# "sections":{...},"specialAddresses":{...}
kallsyms_named() {
	awk -f "$lib/kallsyms-named.awk" "$1"
}

# The elements of "symbols", one a line, comma-separated: text symbols
# sorted by address, aliases in kallsyms order (the line number breaks ties).
kallsyms_symbols() {
	awk -f "$lib/kallsyms-symbols.awk" "$1" | sort -k1,1 -k2,2 | sed 's/^[^ ]* [^ ]* //; $!s/$/,/'
}
