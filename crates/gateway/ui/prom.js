// Prometheus text format, the part /metrics uses: `name{label="v",…} value` lines.

/** Parses exposition text into [{name, labels, value}] (comments and blank lines skipped). */
export function parseProm(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) {
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** The series of one metric as {labelValue: value} keyed by `label`. */
export function byLabel(samples, name, label) {
  const out = {};
  for (const s of samples) if (s.name === name && label in s.labels) out[s.labels[label]] = s.value;
  return out;
}
