# From /proc/kallsyms: one JSON symbol a line for the capture's "symbols",
# text symbols (t, T, w, W) and _etext, module symbols with "module" set,
# each prefixed with its address and its line number so that `sort -k1,1
# -k2,2` orders them by address and keeps kallsyms order among aliases.
($2 ~ /^[tTwW]$/ || $3 == "_etext") && (NF == 3 || NF == 4) {
	mod = ""
	if (NF == 4) { mod = $4; gsub(/[][]/, "", mod); mod = ",\"module\":\"" mod "\"" }
	printf "%s %012d {\"name\":\"%s\",\"address\":\"0x%s\",\"type\":\"%s\"%s}\n", $1, NR, $3, $1, $2, mod
}