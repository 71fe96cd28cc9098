//! The page's style sheet and legend.

pub(super) const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2228; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; }
table.summary { border-collapse: collapse; }
table.summary td, table.summary th { padding: 3px 12px; border-bottom: 1px solid #dde1e6; text-align: left; }
pre { background: #f5f6f8; padding: 10px; font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%; box-sizing: border-box; }
.linearizable { color: #1e7b34; } .not-linearizable, .error { color: #b3261e; } .unknown { color: #9a6700; } .skipped { color: #6b7280; }
.badge { font-size: 13px; border: 1px solid currentColor; border-radius: 4px; padding: 1px 6px; }
details { margin: 6px 0; } summary { cursor: pointer; }
.note, .axis { color: #4b5563; font-size: 13px; margin: 4px 0; }
.scroll { overflow-x: auto; border: 1px solid #dde1e6; margin: 6px 0; }
svg text { font: 11px system-ui, sans-serif; pointer-events: none; }
.lane { fill: #ffffff; } .lane.even { fill: #f7f8fa; } .client { fill: #4b5563; }
.tick { fill: #6b7280; text-anchor: middle; } .grid { stroke: #e5e7eb; stroke-width: 1; }
.op rect { stroke-width: 1.5; } .op text { fill: #111827; }
.op.placed rect { fill: #9fd8ac; stroke: #1e7b34; }
.op.unplaced rect { fill: #d9dde3; stroke: #8a929c; }
.op.stuck rect { fill: #f7c4c0; stroke: #b3261e; }
.op.due rect { stroke-width: 3; }
.op.open rect { stroke-dasharray: 4 3; fill-opacity: 0.55; }
.op:hover rect { stroke: #111827; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 26px; height: 11px; border: 1.5px solid; border-radius: 3px; vertical-align: middle; margin-right: 5px; }
";

pub(super) const LEGEND: &str = "<p class=\"legend\">\
<span><i style=\"background:#9fd8ac;border-color:#1e7b34\"></i>takes effect (hover for its place in the order)</span>\
<span><i style=\"background:#f7c4c0;border-color:#b3261e\"></i>cannot come after the longest linearizable prefix</span>\
<span><i style=\"background:#f7c4c0;border-color:#b3261e;border-width:3px\"></i>returned first among the rest</span>\
<span><i style=\"background:#d9dde3;border-color:#8a929c\"></i>not placed</span>\
<span><i style=\"border-style:dashed\"></i>never returned</span>\
A bar goes from an operation's call to its return and says what it did; hover over it for the \
rest (id, client, times).</p>";
