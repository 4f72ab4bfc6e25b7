# table.awk - mnbench RESULT lines to one Markdown table per scenario and
# rate. Columns are the servers in the order they ran; the first is ours
# (MicroNotifier in one of its set-ups) and every other column is followed
# by the ratio first / that one. A run whose generator was the bottleneck
# shows "gen-bound" instead of its latencies. Two-MicroNotifier scenarios
# (distributed, fcgi) also get the p99 difference to the standalone gateway,
# and a scenario with the 1-worker gateway a like-for-like line against nchan
# with as many workers.
/^RESULT / {
    delete f
    for (i = 2; i <= NF; i++) {
        eq = index($i, "=")
        f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
    key = f["scenario"] SUBSEP f["rate"]
    if (!(key in seen)) {
        seen[key] = 1
        order[++n] = key
    }
    lab = f["label"]
    if (!has[key, lab]) {
        has[key, lab] = 1
        cols[key, ++ncols[key]] = lab
    }
    for (k in f)
        v[key, lab, k] = f[k]
}

function cell(key, lab, m,    x) {
    if (!has[key, lab])
        return "-"
    if (m == "refused")
        return v[key, lab, "conns"] - v[key, lab, "ready"]
    x = v[key, lab, m] + 0
    if (m ~ /_us$/ && v[key, lab, "gen_bound"] == 1)
        return "gen-bound"
    return us(x, m)
}

function us(x, m) {
    if (m !~ /_us$/)
        return x
    if (x >= 10000 || x <= -10000)
        return sprintf("%.0f ms", x / 1000)
    if (x >= 1000 || x <= -1000)
        return sprintf("%.1f ms", x / 1000)
    return x " us"
}

function ratio(key, a, b, m,    x, y) {
    if (!has[key, a] || !has[key, b] || m == "loss" || m == "ready" || m == "refused")
        return "-"
    if (m ~ /_us$/ && (v[key, a, "gen_bound"] == 1 || v[key, b, "gen_bound"] == 1))
        return "-"
    x = v[key, a, m] + 0
    y = v[key, b, m] + 0
    if (y == 0)
        return "-"
    return sprintf("%.2f", x / y)
}

# "Like for like": ours against nchan with as many workers (threads or
# processes), p99 and CPU per delivery, when both ran.
function like(key, a, b, what) {
    if (!has[key, a] || !has[key, b])
        return
    printf "Like for like, %s: p99 %s vs %s (%s), CPU per delivery %s vs %s us (%s)\n\n",
        what, cell(key, a, "p99_us"), cell(key, b, "p99_us"), ratio(key, a, b, "p99_us"),
        v[key, a, "us_per_delivery"], v[key, b, "us_per_delivery"],
        ratio(key, a, b, "us_per_delivery")
}

function title(lab) {
    if (lab in names_srv)
        return names_srv[lab]
    return lab
}

END {
    nm = split("p50_us p90_us p99_us p999_us max_us loss deliveries_per_s " \
               "server_cpu_pct us_per_delivery us_per_publish gen_cpu_max_pct", ms, " ")
    names["p50_us"] = "p50 latency"; names["p90_us"] = "p90"; names["p99_us"] = "p99"
    names["p999_us"] = "p99.9"; names["max_us"] = "max"; names["loss"] = "lost messages"
    names["deliveries_per_s"] = "deliveries/s"; names["server_cpu_pct"] = "server CPU %"
    names["us_per_delivery"] = "server CPU us/delivery"
    names["us_per_publish"] = "server CPU us/publish"
    names["gen_cpu_max_pct"] = "generator busiest process CPU %"
    names["kib_per_conn"] = "server RSS KiB/connection"; names["ready"] = "connections held"
    names["refused"] = "connections refused or failed"
    names_srv["gateway"] = "MicroNotifier"
    names_srv["gateway1"] = "MicroNotifier 1 worker"
    names_srv["gw3"] = "MicroNotifier, 3 gateways on Redis"
    names_srv["dist"] = "MicroNotifier, 2 gateways on Redis"
    names_srv["fcgi"] = "MicroNotifier, REST via nginx + FastCGI"
    names_srv["nchan1"] = "nchan 1 worker"
    names_srv["nchan2"] = "nchan 2 workers"
    names_srv["nchan3"] = "nchan 3 workers"
    names_srv["nchanr"] = "nchan, 2 nginx on Redis"
    names_srv["floor"] = "send() floor"
    for (i = 1; i <= n; i++) {
        key = order[i]
        split(key, kr, SUBSEP)
        first = cols[key, 1]
        printf "### %s, %s conns on %s channel(s), %s msg/s\n\n", kr[1],
            v[key, first, "conns"], v[key, first, "channels"], kr[2]
        nb = 0
        for (c = 1; c <= ncols[key]; c++)
            nb += v[key, cols[key, c], "batch"] > 1
        if (nb) {
            line = "Events per request:"
            for (c = 1; c <= ncols[key]; c++)
                line = line (c > 1 ? "," : "") " " title(cols[key, c]) " " \
                    (v[key, cols[key, c], "batch"] > 1 ? v[key, cols[key, c], "batch"] : 1)
            print line " (us/publish is per event).\n"
        }
        hdr = "| metric | " title(first)
        sep = "|---|---"
        for (c = 2; c <= ncols[key]; c++) {
            hdr = hdr " | " title(cols[key, c]) " | " (cols[key, c] == "floor" ? "ours/floor" : "ratio")
            sep = sep "|---|---"
        }
        print hdr " |"
        print sep "|"
        delete ml
        if (kr[2] == 0) {
            ml[1] = "ready"; ml[2] = "refused"; ml[3] = "kib_per_conn"
            ml[4] = "server_cpu_pct"; k = 4
        } else {
            for (j = 1; j <= nm; j++)
                ml[j] = ms[j]
            k = nm
        }
        for (j = 1; j <= k; j++) {
            m = ml[j]
            line = "| " names[m] " | " cell(key, first, m)
            for (c = 2; c <= ncols[key]; c++)
                line = line " | " cell(key, cols[key, c], m) " | " \
                    ratio(key, first, cols[key, c], m)
            print line " |"
        }
        print ""
        if (kr[2] != 0) {
            like(key, "gateway1", "nchan1", "1 worker each")
            like(key, "gateway", "nchan2", "2 workers each")
        }
        if (first != "gateway" && has[key, "gateway"] && kr[2] != 0 &&
            v[key, first, "gen_bound"] + 0 == 0 && v[key, "gateway", "gen_bound"] + 0 == 0)
            printf "p99 %s minus the standalone gateway's: %s\n\n", title(first),
                us(v[key, first, "p99_us"] - v[key, "gateway", "p99_us"], "p99_us")
    }
}
