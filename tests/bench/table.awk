# table.awk - mnbench RESULT lines to one Markdown table per scenario and
# rate: MicroNotifier (label gateway) beside nchan with 1 and 2 workers and
# the send() floor, with the ratio ours / theirs. A run whose generator was
# the bottleneck shows "gen-bound" instead of its latencies.
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
    for (k in f)
        v[key, f["label"], k] = f[k]
    has[key, f["label"]] = 1
}

function cell(key, lab, m,    x) {
    if (!has[key, lab])
        return "-"
    x = v[key, lab, m] + 0
    if (m ~ /_us$/ && v[key, lab, "gen_bound"] == 1)
        return "gen-bound"
    if (m ~ /_us$/ && x >= 10000)
        return sprintf("%.0f ms", x / 1000)
    if (m ~ /_us$/ && x >= 1000)
        return sprintf("%.1f ms", x / 1000)
    if (m ~ /_us$/)
        return x " us"
    return v[key, lab, m]
}

function ratio(key, a, b, m,    x, y) {
    if (!has[key, a] || !has[key, b] || m == "loss" || m == "ready")
        return "-"
    if (m ~ /_us$/ && (v[key, a, "gen_bound"] == 1 || v[key, b, "gen_bound"] == 1))
        return "-"
    x = v[key, a, m] + 0
    y = v[key, b, m] + 0
    if (y == 0)
        return "-"
    return sprintf("%.2f", x / y)
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
    for (i = 1; i <= n; i++) {
        key = order[i]
        split(key, kr, SUBSEP)
        lab = "gateway"
        printf "### %s, %s conns on %s channel(s), %s msg/s\n\n", kr[1],
            v[key, lab, "conns"], v[key, lab, "channels"], kr[2]
        print "| metric | MicroNotifier | nchan 1 worker | ratio | nchan 2 workers | ratio | send() floor | ours/floor |"
        print "|---|---|---|---|---|---|---|---|"
        if (kr[2] == 0) {
            delete ml
            ml[1] = "ready"; ml[2] = "kib_per_conn"; ml[3] = "server_cpu_pct"; k = 3
        } else {
            delete ml
            for (j = 1; j <= nm; j++)
                ml[j] = ms[j]
            k = nm
        }
        for (j = 1; j <= k; j++) {
            m = ml[j]
            printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", names[m],
                cell(key, "gateway", m), cell(key, "nchan1", m),
                ratio(key, "gateway", "nchan1", m), cell(key, "nchan2", m),
                ratio(key, "gateway", "nchan2", m), cell(key, "floor", m),
                ratio(key, "gateway", "floor", m)
        }
        print ""
    }
}
