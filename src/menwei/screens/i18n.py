"""Every word the gate app shows, in Chinese (the default) and English: one catalogue.

Words that come with the core's values (a decision's message, a reason, an address) are the
core's bilingual `Text`; everything the screens add is here. Both languages have the same keys
and the same `{placeholders}` (a test checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from menwei.screens.desk import DeskError

LANGS = ("zh", "en")

ZH: dict[str, str] = {
    # status bar
    "status.operator": "值班:{name}",
    "status.nobody": "未签到",
    "camera.none": "摄像头:无",
    "camera.starting": "摄像头:启动中",
    "camera.open": "摄像头:开",
    "camera.open_fps": "摄像头:{fps}帧/秒",
    "camera.lost": "摄像头:断开",
    "camera.retrying": "摄像头:重连中",
    "camera.ended": "摄像头:视频已放完",
    "camera.closed": "摄像头:已关闭",
    "camera.failed": "摄像头:故障",
    "camera.simulated": "摄像头:模拟",
    "sync.none": "未同步",
    "sync.label": "同步:{state}",
    "sync.unknown": "同步:状态不明",
    # the verdict panel
    "idle.title": "请出示通行证",
    "idle.camera": "把证上的二维码对准摄像头",
    "idle.scanner": "或用扫码枪扫一下",
    "idle.how": "看到绿色就放行,黄色要核实,红色不能通行。",
    "idle.no_pass": "没带证?按 F5 按户号或楼号-房号查找。",
    "verdict.now": "现在",
    "verdict.household": "户号",
    "verdict.time": "时间",
    "verdict.way_people": "{way} {count}人",
    "verdict.recorded": "已记录",
    "verdict.not_recorded": "未记录",
    "hint.override": "F3 特批",
    "hint.override_count": "特批人数 {count}(按数字改)",
    "hint.call_committee": "不能特批,请联系居委会",
    "hint.amend": "按数字改人数 · F2 改方向 · F4 撤销",
    "hint.flip": "F2 改方向",
    "hint.clears": "{seconds}秒后清除(Esc 立即清除)",
    "direction.exit": "外出",
    "direction.entry": "返回",
    "choice.auto": "自动(按该户状态)",
    "choice.exit": "外出",
    "choice.entry": "返回",
    "next.label": "下一位",
    "next.direction": "方向:{way}(F2)",
    "next.headcount": "人数:{count}(数字键)",
    "next.present": "F9 模拟出示通行证",
    "recent.title": "最近记录",
    "recent.none": "本门岗还没有记录",
    "recent.people": "{count}人",
    "kind.exit": "外出",
    "kind.entry": "返回",
    "kind.deny": "拒绝",
    "kind.override": "特批",
    "kind.annul": "撤销",
    "kind.shift_start": "上岗",
    "kind.shift_end": "下岗",
    "kind.register": "返回登记",
    "state.in": "在小区内",
    "state.out": "外出中",
    # keys
    "key.help": "帮助",
    "key.direction": "出/入",
    "key.override": "特批",
    "key.undo": "撤销",
    "key.register": "返回登记",
    "register.title": "返回居民登记(没有外出记录的返回)",
    "register.household": "户号或楼号-房号(如 3-301)",
    "register.note": "说明:从哪里回来、为什么(如 外地返岗,已查验)",
    "register.hint": "填好两项后回车登记。登记后请楼组红色管家护送到家。",
    "register.not_one": "请输入能确定一户的户号或地址({count} 户符合)",
    "key.lookup": "查户",
    "key.headcount": "人数",
    "key.board": "外出名单",
    "key.log": "日志",
    "key.handover": "交班",
    "key.present": "模拟出示",
    "key.language": "English",
    "key.confirm": "确认",
    "key.cancel": "取消",
    "key.undo_confirm": "确认撤销",
    "key.undo_keep": "不撤销",
    "key.decide": "确定",
    "key.choose": "选择",
    "key.present_go": "出示(空=随机)",
    "key.close": "关闭",
    "key.signin": "签到",
    "key.handover_go": "交班给他/她",
    "key.finish": "结束值班并退出",
    "key.back": "回扫码",
    "key.scroll": "翻看",
    "key.switch_table": "切换表格",
    "key.next_field": "下一栏",
    "key.filter": "筛选",
    "key.verify": "校验日志",
    "key.clear_filters": "清除筛选",
    # dialogs
    "override.title": "特批通行",
    "override.household": "户号 {number}  {where}",
    "override.refused": "被拒原因:{why}",
    "override.count": "人数:{count}",
    "override.ask": "为什么特批?按数字或 ↑↓ 选,回车确认:",
    "override.other_hint": "(请写明原因)",
    "override.note": "说明(选“其他”时必填)",
    "override.need_note": "选了“其他”:请在说明里写清原因,再按回车。",
    "undo.title": "撤销这条记录?",
    "undo.what": "{time} {kind} 户号 {number} {where}\n{way} {count}人 · 值班 {operator}",
    "lookup.title": "查找住户",
    "lookup.placeholder": "户号(如 1203)或 楼号-房号(如 3-301)",
    "lookup.hint": "输入户号或楼号-房号,回车确定。",
    "lookup.found": "找到 {count} 户:↑↓ 选,回车确定",
    "lookup.none": "没有找到这一户,请核对后再输。",
    "present.title": "模拟出示通行证(演示)",
    "present.placeholder": "户号,留空则随机",
    "present.hint": "有 {count} 户的证可出示,例如:{sample}",
    "present.unknown": "没有户号 {text} 的证",
    "help.title": "帮助",
    "help.body": (
        "扫码:把通行证对准摄像头,或用扫码枪扫。任何时候都可以扫。\n"
        "绿色 = 放行 / 欢迎回家;黄色 = 请核实;红色 = 禁止通行。\n"
        "响一声 = 绿,两声 = 黄,三声 = 红。\n"
        "\n"
        "1-9   改人数(结果在屏上时改这一次,否则改下一位)\n"
        "F2    改方向 外出/返回(结果在屏上时改这一次)\n"
        "F3    特批:红色或黄色时,选原因后放行\n"
        "F4    撤销上一条记录(2分钟内)\n"
        "F5    没带证:按户号或楼号-房号查找\n"
        "F6    外出名单:谁在外面、谁超时、各楼组时段\n"
        "F7    今天的日志,可筛选、校验\n"
        "F8    交班:看未回的户,下一位签到\n"
        "F10   English\n"
        "Esc   回到扫码 / 清除结果"
    ),
    "signin.title": "值班签到",
    "signin.where": "{community} · {gate}",
    "signin.name": "你的名字",
    "signin.pin": "密码(PIN)",
    "signin.pin_please": "请输入你的密码(PIN),再按回车。",
    "handover.title": "交班",
    "handover.next": "接班人签到:",
    "handover.shift": "本班:{name},{since} 起",
    "handover.counts": (
        "外出 {exits} · 返回 {entries} · 拒绝 {refusals} · 特批 {overrides} · 撤销 {undone}"
    ),
    "handover.out": "现在外出 {count} 户",
    "handover.overdue": " 其中超时 {count} 户 ",
    "handover.overdue_row": "超时  户号 {number} {where}  {since} 出门,已 {minutes} 分钟",
    "handover.more": "……还有 {count} 户超时,见外出名单(F6)",
    "handover.name_needed": "请接班人输入名字;没人接班请按 F2 结束值班。",
    # out-now board
    "board.title": "现在外出 {count} 户",
    "board.overdue": " 超时 {count} 户 ",
    "board.col.household": "户号",
    "board.col.address": "地址",
    "board.col.group": "楼组",
    "board.col.since": "出门",
    "board.col.out_for": "已外出",
    "board.col.gate": "门岗",
    "board.col.people": "人数",
    "board.col.out": "外出/户数",
    "board.col.open": "当前时段",
    "board.col.next": "下一时段",
    "board.late": "{time} 超时",
    "board.closed": "未开放",
    "board.any_time": "不限时段",
    "board.next": "{time}(还有{wait})",
    # log
    "log.household": "户号",
    "log.group": "楼组",
    "log.operator": "值班员",
    "log.reason": "原因",
    "log.col.time": "时间",
    "log.col.event": "事件",
    "log.col.household": "户号",
    "log.col.direction": "方向",
    "log.col.people": "人数",
    "log.col.result": "结果",
    "log.col.operator": "值班员",
    "log.col.note": "备注",
    "log.count": "今天 {count} 条",
    "log.chain_ok": "日志完整:共 {count} 条,无缺失、无改动",
    "log.chain_broken": "日志有问题:第 {seq} 条 ({problem}),请联系居委会",
    "log.verifying": "正在校验日志……",
    # errors
    "error.name_needed": "请输入名字。",
    "error.pin_needed": "请输入密码(PIN)。",
    "error.wrong_pin": "密码不对,请再试。",
    "error.gate": "无法办理:{message}",
    "error.sign_in_first": "请先签到,再扫码。",
    "error.headcount": "人数要在 1 到 {max} 之间。",
    "error.not_overridable": "屏上没有可特批的结果(伪造、作废的证不能特批)。",
    "error.nothing_to_undo": "没有可撤销的记录(只能撤销2分钟内的放行或返回)。",
}

EN: dict[str, str] = {
    "status.operator": "on duty: {name}",
    "status.nobody": "nobody signed in",
    "camera.none": "no camera",
    "camera.starting": "camera: starting",
    "camera.open": "camera: on",
    "camera.open_fps": "camera: {fps} fps",
    "camera.lost": "camera: lost",
    "camera.retrying": "camera: reconnecting",
    "camera.ended": "camera: video ended",
    "camera.closed": "camera: closed",
    "camera.failed": "camera: failed",
    "camera.simulated": "camera: simulated",
    "sync.none": "offline",
    "sync.label": "sync: {state}",
    "sync.unknown": "sync: unknown",
    "idle.title": "Show the pass",
    "idle.camera": "Hold the pass's QR code to the camera",
    "idle.scanner": "or scan it with the scanner",
    "idle.how": "Green: let them go. Amber: check. Red: they may not pass.",
    "idle.no_pass": "No pass? F5 finds a household by number or building-room.",
    "verdict.now": "now",
    "verdict.household": "household",
    "verdict.time": "time",
    "verdict.way_people": "{way} · people: {count}",
    "verdict.recorded": "recorded",
    "verdict.not_recorded": "not recorded",
    "hint.override": "F3 override",
    "hint.override_count": "override for {count} (digit changes)",
    "hint.call_committee": "no override: call the committee",
    "hint.amend": "digit: people · F2: direction · F4: undo",
    "hint.flip": "F2 other direction",
    "hint.clears": "clears in {seconds} s (Esc now)",
    "direction.exit": "going out",
    "direction.entry": "coming in",
    "choice.auto": "auto (from the household)",
    "choice.exit": "going out",
    "choice.entry": "coming in",
    "next.label": "Next",
    "next.direction": "direction: {way} (F2)",
    "next.headcount": "people: {count} (digit)",
    "next.present": "F9 shows a pass (demo)",
    "recent.title": "Latest records",
    "recent.none": "No records at this gate yet",
    "recent.people": "{count} ppl",
    "kind.exit": "out",
    "kind.entry": "in",
    "kind.deny": "refused",
    "kind.override": "override",
    "kind.annul": "undone",
    "kind.shift_start": "sign-in",
    "kind.shift_end": "sign-out",
    "kind.register": "registered",
    "state.in": "inside",
    "state.out": "out",
    "key.help": "Help",
    "key.direction": "In/Out",
    "key.override": "Override",
    "key.undo": "Undo",
    "key.register": "Returning",
    "register.title": "Register a returning resident (back with no exit on record)",
    "register.household": "Household or building-room (e.g. 3-301)",
    "register.note": "Note: where from and why (e.g. back from work elsewhere, checked)",
    "register.hint": "Fill in both, then Enter. The building steward escorts them home.",
    "register.not_one": "Type a number or address that names one household ({count} match)",
    "key.lookup": "Find",
    "key.headcount": "People",
    "key.board": "Out now",
    "key.log": "Log",
    "key.handover": "Hand over",
    "key.present": "Show pass",
    "key.language": "中文",
    "key.confirm": "Confirm",
    "key.cancel": "Cancel",
    "key.undo_confirm": "Undo it",
    "key.undo_keep": "Keep it",
    "key.decide": "Decide",
    "key.choose": "Choose",
    "key.present_go": "Show (empty = any)",
    "key.close": "Close",
    "key.signin": "Sign in",
    "key.handover_go": "Hand over",
    "key.finish": "End shift and quit",
    "key.back": "Back to scan",
    "key.scroll": "Scroll",
    "key.switch_table": "Other table",
    "key.next_field": "Next field",
    "key.filter": "Filter",
    "key.verify": "Verify log",
    "key.clear_filters": "Clear filters",
    "override.title": "Override",
    "override.household": "Household {number}  {where}",
    "override.refused": "Refused: {why}",
    "override.count": "People: {count}",
    "override.ask": "Why? Press a digit or use ↑↓, then Enter:",
    "override.other_hint": " (say why)",
    "override.note": "Note (needed for 'other')",
    "override.need_note": "'Other' needs the reason in the note, then Enter.",
    "undo.title": "Undo this record?",
    "undo.what": "{time} {kind} household {number} {where}\n{way} · people: {count} · by {operator}",
    "lookup.title": "Find a household",
    "lookup.placeholder": "Household (e.g. 1203) or building-room (e.g. 3-301)",
    "lookup.hint": "Type a household number or building-room, then Enter.",
    "lookup.found": "{count} found: ↑↓ to choose, Enter to decide",
    "lookup.none": "No such household: check and type again.",
    "present.title": "Show a printed pass (demo)",
    "present.placeholder": "Household, empty for any",
    "present.hint": "{count} passes can be shown, e.g. {sample}",
    "present.unknown": "No pass for household {text}",
    "help.title": "Help",
    "help.body": (
        "Scan: hold the pass to the camera, or use the scanner. Any time, on any screen.\n"
        "Green = go ahead / welcome home; amber = check; red = stop.\n"
        "One bell = green, two = amber, three = red.\n"
        "\n"
        "1-9   people (on screen: this scan; otherwise: the next one)\n"
        "F2    direction out/in (on screen: this scan)\n"
        "F3    override a red or amber result, with a reason\n"
        "F4    undo the last record (within 2 minutes)\n"
        "F5    no pass: find by household number or building-room\n"
        "F6    out now: who is out, who is late, groups' windows\n"
        "F7    today's log, with filters and a check\n"
        "F8    hand over: what is open, the next volunteer signs in\n"
        "F10   中文\n"
        "Esc   back to scanning / clear the result"
    ),
    "signin.title": "Sign in for your shift",
    "signin.where": "{community} · {gate}",
    "signin.name": "Your name",
    "signin.pin": "PIN",
    "signin.pin_please": "Type your PIN, then Enter.",
    "handover.title": "Hand over",
    "handover.next": "The next volunteer signs in:",
    "handover.shift": "This shift: {name}, since {since}",
    "handover.counts": (
        "out {exits} · in {entries} · refused {refusals} · overrides {overrides} · undone {undone}"
    ),
    "handover.out": "{count} households out now",
    "handover.overdue": " {count} overdue ",
    "handover.overdue_row": "late  household {number} {where}  out at {since}, {minutes} min",
    "handover.more": "... {count} more overdue: see Out now (F6)",
    "handover.name_needed": "The next volunteer types a name; nobody taking over: F2 ends the shift.",
    "board.title": "{count} households out now",
    "board.overdue": " {count} overdue ",
    "board.col.household": "Household",
    "board.col.address": "Address",
    "board.col.group": "Group",
    "board.col.since": "Out at",
    "board.col.out_for": "Out for",
    "board.col.gate": "Gate",
    "board.col.people": "People",
    "board.col.out": "Out/All",
    "board.col.open": "Open now",
    "board.col.next": "Next window",
    "board.late": "{time} late",
    "board.closed": "closed",
    "board.any_time": "any time",
    "board.next": "{time} (in {wait})",
    "log.household": "Household",
    "log.group": "Group",
    "log.operator": "Operator",
    "log.reason": "Reason",
    "log.col.time": "Time",
    "log.col.event": "Event",
    "log.col.household": "Household",
    "log.col.direction": "Direction",
    "log.col.people": "People",
    "log.col.result": "Result",
    "log.col.operator": "Operator",
    "log.col.note": "Note",
    "log.count": "{count} today",
    "log.chain_ok": "Log intact: {count} records, none missing or altered",
    "log.chain_broken": "Log problem at record {seq} ({problem}): call the committee",
    "log.verifying": "Checking the log...",
    "error.name_needed": "Type your name.",
    "error.pin_needed": "Type your PIN.",
    "error.wrong_pin": "Wrong PIN, try again.",
    "error.gate": "Cannot do that: {message}",
    "error.sign_in_first": "Sign in first, then scan.",
    "error.headcount": "People must be 1 to {max}.",
    "error.not_overridable": "No result on screen that can be overridden (never a forged or revoked pass).",
    "error.nothing_to_undo": "Nothing to undo (only a trip recorded in the last 2 minutes).",
}

CATALOGUE: dict[str, dict[str, str]] = {"zh": ZH, "en": EN}

# The gate service's own error messages (English) in Chinese, matched by their beginning.
GATE_ERRORS_ZH: tuple[tuple[str, str], ...] = (
    ("Headcount must be", "人数不对"),
    ("Only a refusal recorded at this gate", "只能特批本门岗记录的拒绝"),
    ("A refusal for", "这种拒绝不能特批,请联系居委会"),
    ("Override reason", "本小区不允许这个特批原因"),
    ("An override for 'other'", "选“其他”要写明原因"),
    ("A sealed building", "封控楼只能因就医或紧急情况特批"),
    ("That refusal is too old", "这次拒绝已超过10分钟,请重新扫码"),
    ("That refusal was already", "这次拒绝已特批或撤销过了"),
    ("An override needs a household", "不在花名册的户不能特批"),
    ("Nothing to undo", "没有可撤销的记录"),
    ("The last scan was already undone", "上一条记录已撤销过了"),
    ("Undo works only within 2 minutes", "只能撤销2分钟内的记录"),
    ("Sign in with your name", "请输入名字签到"),
    ("Wrong PIN", "密码不对"),
    ("Registering a returning resident needs a note", "返回登记要写明说明"),
    ("This household is out", "该户正在外出:请扫码让其返回"),
    ("Household ", "该户不在花名册中"),
)


def tr(lang: str, key: str, **values: object) -> str:
    """The words for `key` in `lang` (Chinese when unknown), with `{placeholders}` filled in."""
    table = CATALOGUE.get(lang, ZH)
    template = table.get(key) or ZH.get(key) or key
    return template.format(**values) if values else template


def gate_message(lang: str, message: str) -> str:
    """A gate service error message in `lang`."""
    if lang == "en":
        return message
    for prefix, words in GATE_ERRORS_ZH:
        if message.startswith(prefix):
            return words
    return message


def desk_error(lang: str, error: DeskError) -> str:
    """The words for what the desk could not do."""
    if error.key == "error.gate":
        message = gate_message(lang, str(error.values.get("message", "")))
        return tr(lang, "error.gate", message=message)
    return tr(lang, error.key, **error.values)
