"""The labour-dispatch line: wording that makes an outsourcing contract (劳务外包) work like labour
dispatch (劳务派遣), which 劳务派遣暂行规定 art. 27 then treats as dispatch.

The test of outsourcing is who manages the workers and what is paid for. The vendor manages its own
people and the client buys a work result; once the client manages, disciplines, clocks, schedules,
assigns or appraises the vendor's people one by one, pays per head or per hour with no deliverable,
puts them in its own temporary, auxiliary or substitute posts (临时性、辅助性、替代性, the only posts
dispatch may fill, 劳动合同法 art. 66) or counts them in its 10 % dispatch share (暂行规定 art. 4), the
arrangement is dispatch in all but name. Each of these is a family below: patterns in zh-CN and en,
a finding message in both languages and a severity.

Negation: wording that denies the sign ("甲方不得直接管理乙方人员", "The Client shall not assign
tasks to the Vendor's Workers") is the opposite and is skipped, as is wording that makes the vendor
the manager ("考勤由乙方负责"): the patterns name the client as the actor, and a negation cue shortly
before a match (in its clause) cancels it. Gaps inside a pattern never cross a negation word.

Pure Python; linear in the text (each pattern is scanned once and each match reads a bounded tail
of its sentence: see `_NEGATION_REACH`).
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Literal, Mapping

Severity = Literal["high", "medium", "low"]

# --- Chinese vocabulary ----------------------------------------------------------------------------

# The vendor's people ("乙方人员" is the defined term of the library clause), and the client or one
# of its managers (甲方项目经理, 甲方班组长 ...): the actor whose management makes it dispatch.
_W = (r"(?:乙方(?:的|派驻|派遣|所派|委派)?(?:人员|员工|工作人员|劳动者|外包人员|服务人员|现场人员|作业人员|派驻人员)"
      r"|外包人员|派驻人员|外包员工|该等人员)")
_C = (r"甲方(?:的)?(?:项目经理|班组长|组长|现场主管|主管|现场管理人员|管理人员|部门负责人|负责人|人力资源部门?|"
      r"人事部门?|领班|车间主任|调度员)?")
_MODAL = r"(?:有权|可以|可|负责|应当|应|将|须|统一|每月|按月|定期)*"
_NO = "不非无未勿禁免"                      # a gap never crosses one of these: it would carry a negation


def _gap(n: int, stop: str = _NO) -> str:
    return rf"[^，,。；;：:{stop}]{{0,{n}}}?"


def _acts_on_workers(verbs: str) -> tuple[str, str]:
    """The two general shapes of a family in Chinese, within one clause and across no negation: the
    client, then the workers, then what it does to them (甲方班组长每日向乙方人员派发工作任务); the
    workers, then 由/经/受/向 the client, then the act (乙方人员的出勤情况由甲方人事部门每日核对并记录考勤)."""
    return (rf"{_C}{_gap(12)}{_W}{_gap(10)}(?:{verbs})",
            rf"{_W}{_gap(10)}(?:由|经|受|接受|服从|听从|向){_C}{_gap(10)}(?:{verbs})")


_ZH_NEGATION = re.compile(r"(?:不(?!合格|符合|满足|胜任|定期|时|断|超过|低于|少于)|不得|无权|禁止|严禁|并非|非|未|"
                          r"无需|无须|避免)[^，,。；;]{0,12}$")

# --- English vocabulary ----------------------------------------------------------------------------

_APOS = "['’]"
# Both start at a word, never at an optional "the ": a leading optional group makes the regex engine
# try every position of the text (five times slower on a long clause).
_WE = (rf"(?:vendor{_APOS}?s\s+(?:workers|personnel|staff|employees|team\s+members|people)|(?:workers|personnel|staff)"
       rf"\s+(?:of|provided\s+by|supplied\s+by|assigned\s+by)\s+the\s+vendor|outsourced\s+(?:workers|staff|personnel)|"
       rf"(?:the|its|such|individual)\s+workers|each\s+worker)")
_CE = (rf"client(?:{_APOS}s\s+(?:own\s+)?(?:project\s+managers?|team\s+leaders?|supervisors?|"
       rf"line\s+managers?|shift\s+leaders?|managers?|hr\s+department|foreman|foremen))?")
_CLIENTS = rf"client{_APOS}?s"
_THE_CE = rf"(?:the\s+)?{_CE}"                    # inside a pattern: the article is optional there
_THE_WE = rf"(?:the\s+|any\s+of\s+the\s+|each\s+of\s+the\s+)?{_WE}"
_THE_CLIENTS = rf"(?:the\s+)?{_CLIENTS}"
_EN_MODAL = (r"(?:\s+(?:shall|may|will|must|can|is\s+entitled\s+to|has\s+the\s+right\s+to|reserves\s+the\s+right\s+to))?"
             r"(?:\s+(?:directly|itself|also))?")
_EN_NEG_WORDS = r"\b(?:not|never|no|neither|nor|without)\b"


def _en_gap(n: int) -> str:
    return rf"(?:(?!{_EN_NEG_WORDS})[^.;]){{0,{n}}}?"


_EN_NEGATION = re.compile(rf"(?:{_EN_NEG_WORDS}|\b(?:nothing|instead\s+of|rather\s+than|prohibited\s+from|"
                          r"forbidden\s+to)\b)[^.;]{0,40}$", re.IGNORECASE)
# A contrast starts a new clause: "The Client shall not manage them, but it keeps their attendance."
_EN_CONTRAST = re.compile(r",\s*(?:but|while|whereas|however|yet)\b|\bbut\b", re.IGNORECASE)


# --- the families ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    key: str
    severity: Severity
    message: Mapping[str, str]                 # language -> the finding's message
    patterns: Mapping[str, tuple[re.Pattern, ...]]


def _zh(*patterns: str) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p) for p in patterns)


def _en(*patterns: str) -> tuple[re.Pattern, ...]:
    # Lower-case patterns run on the text lowered once (_ASCII_LOWER): three times faster than IGNORECASE.
    return tuple(re.compile(p) for p in patterns)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")   # keeps every position


_RULES = r"(?:劳动纪律|规章制度|员工手册|人事管理制度|人事制度|管理制度|奖惩制度|员工守则|用工制度)"
_APPRAISE_ZH = r"(?:绩效评定|绩效考核|绩效考评|绩效评估|绩效评价|个人考核|考核|考评|评定|评分|打分)"
_PAY_BASIS_ZH = r"(?:人数|人头|人员数量|出勤人数|出勤天数|出勤|人天|人日|人月|人工时|工时|工作小时数?|小时数?|工作天数)"

FAMILIES: tuple[Family, ...] = (
    Family("management", "high", {
        "zh-CN": "甲方直接管理乙方人员或对其适用甲方规章制度、劳动纪律及奖惩：管理权归属用工单位是劳务派遣的标志。",
        "en": "The Client manages or disciplines the Vendor's Workers itself, or its own rules and labour "
              "discipline apply to them: management by the client is the mark of labour dispatch."}, {
        "zh-CN": _zh(
            rf"{_C}{_MODAL}直接(?:管理|指挥|领导|监督管理)",
            rf"{_C}{_MODAL}(?:对)?{_W}(?:的)?(?:日常|现场|统一|全面)?(?:进行)?(?:管理|指挥|领导)(?!费)",
            rf"(?:由|受|接受|服从|听从)\s*{_C}(?:的)?(?:直接|统一|日常)?(?:管理|指挥|领导|监督管理)(?!费)",
            rf"(?:服从|听从){_C}(?!的?(?:工作|任务|生产|日常|考勤)?(?:安排|调度|调配|指派|指令|分配|排班|管理)|"
            rf"的?(?:安全|消防|门禁|保密))",
            rf"{_C}{_MODAL}(?:直接)?(?:对{_W}(?:进行|给予|予以)?|将{_W}|{_W})(?:奖惩|处罚|罚款|辞退|开除|解聘|退回|"
            rf"纪律处分|警告处分)",
            rf"{_C}{_MODAL}直接(?:奖惩|处罚|辞退|开除|解聘|退回)",
            rf"(?:遵守|执行|适用|服从){_C}(?:的)?{_gap(10)}{_RULES}",
            rf"{_C}(?:的)?{_RULES}(?:同样|亦|也)?适用(?:于)?{_W}",
            rf"{_W}(?:应|须|需)?(?:纳入|列入)甲方(?:的)?(?:员工|人员)?(?:统一)?管理",
            rf"{_W}(?:应|须|由)?(?:视同|视为|作为)甲方(?:的)?(?:员工|职工)",
            *_acts_on_workers("管理|指挥|领导|监督|处分|处罚|罚款|奖惩|辞退|开除|解聘|警告")),
        "en": _en(
            rf"under\s+the\s+(?:direct\s+|day-to-day\s+|daily\s+)?(?:management|direction|supervision|control|"
            rf"command)\s+of\s+{_THE_CE}",
            rf"under\s+{_THE_CLIENTS}\s+(?:direct\s+|day-to-day\s+)?(?:management|direction|supervision|control|command)",
            rf"{_CE}{_EN_MODAL}\s+(?:manage|direct|supervise|command|discipline|dismiss|return|reward|penalise|"
            rf"penalize)s?\b{_en_gap(40)}(?:{_THE_WE}|workers|personnel)",
            rf"{_CE}(?:\s+(?:shall|will)\s+be|\s+is)\s+responsible\s+for\s+(?:the\s+)?(?:day-to-day\s+|daily\s+|"
            rf"direct\s+|overall\s+)?(?:management|supervision|discipline)\s+of\s+{_THE_WE}",
            rf"{_WE}\s+(?:shall|will|must)\s+(?:obey|follow\s+the\s+instructions\s+of|report\s+to|take\s+instructions\s+"
            rf"from|be\s+managed\s+by|be\s+supervised\s+by|be\s+directed\s+by|be\s+disciplined\s+by)\s+{_THE_CE}",
            rf"subject\s+to\s+{_THE_CLIENTS}\s+(?:rules|policies|work\s+rules|disciplinary|employee\s+handbook|"
            rf"code\s+of\s+conduct|staff\s+rules)",
            rf"(?:comply\s+with|abide\s+by|observe|follow)\s+{_THE_CLIENTS}\s+[a-z,\s]{{0,30}}?(?:labour\s+discipline|"
            rf"labor\s+discipline|work\s+rules|disciplinary\s+rules|employee\s+handbook|staff\s+rules|personnel\s+"
            rf"policies|hr\s+policies)",
            rf"{_CLIENTS}\s+(?:rules|policies|work\s+rules|employee\s+handbook|rules\s+and\s+regulations|regulations)"
            rf"\s+(?:shall\s+|also\s+)?apply\s+to\s+{_THE_WE}")}),
    Family("attendance", "high", {
        "zh-CN": "乙方人员的考勤、请假或加班由甲方负责或审批：考勤管理属于用工管理，应由乙方自行负责。",
        "en": "The Client keeps or approves the attendance, leave or overtime of the Vendor's Workers: "
              "attendance is part of managing the workers and belongs to the Vendor."}, {
        "zh-CN": _zh(
            rf"考勤(?:工作|管理|记录)?(?:统一)?由{_C}(?:统一)?(?:负责|管理|记录|实施|进行|执行|核定)",
            rf"{_C}{_MODAL}(?:对)?{_W}(?:的)?{_gap(12)}考勤",
            rf"(?:遵守|执行|适用|使用|服从){_C}(?:的)?{_gap(8)}(?:考勤制度|考勤规定|考勤管理|考勤系统|打卡|考勤机|"
            rf"工时制度|作息制度|作息时间)",
            rf"(?:请假|休假|加班|调休)(?:申请)?(?:须|需|应)?(?:经|由|报){_C}(?:的)?(?:批准|审批|同意|核准)",
            rf"{_C}{_MODAL}(?:负责|进行|实施)考勤",
            rf"由{_C}(?:统一)?(?:考勤|打卡)",
            rf"(?:在|通过|用){_C}(?:的)?{_gap(6)}(?:考勤机|考勤系统|打卡机|打卡系统)",
            rf"(?:服从|接受|按照|遵守){_C}(?:的)?考勤(?:安排|管理|要求)",
            *_acts_on_workers("考勤|打卡|出勤记录"),
            rf"{_W}{_gap(6)}(?:请假|休假|加班|调休){_gap(8)}(?:向|经|由|报){_C}{_gap(6)}(?:申请|批准|审批|同意|核准)"),
        "en": _en(
            rf"{_CE}{_EN_MODAL}\s+(?:keep|record|track|check|manage|take|monitor)s?\s+(?:the\s+|their\s+|its\s+)?(?:daily\s+)?"
            rf"(?:attendance|time\s+records|timesheets)",
            rf"(?:attendance|timesheets?)(?:\s+records?)?(?:\s+of\s+{_THE_WE})?\s+(?:shall\s+be|is|are|will\s+be)\s+"
            rf"(?:kept|recorded|tracked|managed|checked|taken|approved)\s+by\s+{_THE_CE}",
            rf"{_CE}(?:\s+(?:shall|will)\s+be|\s+is)\s+responsible\s+for\s+(?:the\s+)?(?:[a-z-]+\s+){{0,3}}?attendance",
            rf"(?:clock\s+in|clock\s+out|sign\s+in|badge\s+in|check\s+in)\s+(?:on|with|using|through)\s+{_THE_CLIENTS}\s+"
            rf"(?:time|attendance|clocking)",
            rf"(?:comply\s+with|follow|observe|subject\s+to)\s+{_THE_CLIENTS}\s+(?:[a-z]+\s+){{0,2}}?(?:attendance|"
            rf"timekeeping|time-keeping|working\s+hours\s+polic)",
            rf"(?:leave|overtime|absence)(?:\s+requests?)?(?:\s+of\s+{_THE_WE})?\s+(?:shall\s+|must\s+)?(?:require|need|"
            rf"be\s+subject\s+to|be\s+approved\s+by|are\s+approved\s+by|is\s+approved\s+by)s?\s+(?:the\s+(?:prior\s+)?"
            rf"(?:approval|consent)\s+of\s+)?{_THE_CE}")}),
    Family("work_assignment", "high", {
        "zh-CN": "甲方直接向乙方人员分配工作任务、排班或调配岗位：外包工作应向乙方下达，由乙方自行安排人员完成。",
        "en": "The Client assigns tasks, shifts or posts to the Vendor's Workers directly: outsourced work is "
              "ordered from the Vendor, which deploys its own people."}, {
        "zh-CN": _zh(
            rf"{_C}{_MODAL}(?:直接)?(?:向|对|给|为){_W}(?:直接)?(?:分配|安排|下达|指派|布置|派发|发布)",
            rf"(?:接受|服从|听从|按照|遵照|执行){_C}(?:的)?(?:工作|任务|生产|日常)?(?:安排|调度|调配|指派|指令|分配|排班)",
            rf"(?:按|按照|依照|根据|执行){_C}(?:的|制定的|编制的|下发的)?(?:排班表|排班计划|排班|班次安排|轮班表|班表)",
            rf"由{_C}(?:直接|统一|负责)?(?:分配|安排|指派|调度|排班|调配)(?!(?:给|至|予)乙方(?!(?:的)?(?:人员|员工)))",
            rf"{_C}{_MODAL}(?:直接)?(?:对)?{_W}(?:的)?(?:工作|岗位|班次)?(?:进行)?(?:排班|调度|调配|调岗|工作安排|岗位调配)",
            rf"{_C}{_MODAL}(?:根据|视){_gap(6)}(?:调配|调度|调整|安排){_W}",
            rf"{_C}{_MODAL}(?:直接)?(?:指挥|调度|安排|指派){_W}",
            *_acts_on_workers("分配|派发|下达|指派|布置|排班|调度|调配|工作安排|班次安排")),
        "en": _en(
            rf"{_CE}{_EN_MODAL}\s+(?:assign|allocate|give|issue|distribute)s?\s+(?:daily\s+)?(?:tasks|work|duties|jobs|"
            rf"assignments|instructions|work\s+orders)\s+(?:directly\s+)?to\s+{_THE_WE}",
            rf"{_CE}{_EN_MODAL}\s+(?:assign|allocate|schedule|roster|deploy|direct|instruct|redeploy|move)s?\s+{_THE_WE}",
            rf"(?:according\s+to|in\s+accordance\s+with|following|on|under|as\s+set\s+by)\s+{_THE_CLIENTS}\s+(?:shift\s+)?"
            rf"(?:roster|rota|shift\s+schedule|shift\s+plan|shift\s+pattern|work\s+schedule)",
            rf"{_WE}\s+(?:shall|will|must)\s+(?:follow|accept|carry\s+out|comply\s+with|take)\s+(?:the\s+)?(?:work\s+|daily\s+)?"
            rf"(?:instructions|assignments|directions|orders|work\s+arrangements|task\s+allocations?)\s+(?:of|from|"
            rf"given\s+by|issued\s+by)\s+{_THE_CE}",
            rf"(?:work|tasks|duties|shifts)\s+(?:shall\s+be|is|are|will\s+be)\s+(?:directly\s+)?(?:allocated|assigned|"
            rf"scheduled|distributed)\s+(?:directly\s+)?by\s+{_THE_CE}")}),
    Family("individual_appraisal", "medium", {
        "zh-CN": "甲方对乙方人员个人进行绩效评定或考核：甲方只应考核乙方交付的工作成果，人员考核由乙方自行实施。",
        "en": "The Client appraises the performance of individual Vendor's Workers: the Client assesses the "
              "work results; appraising the people is the Vendor's."}, {
        "zh-CN": _zh(
            rf"{_C}{_MODAL}(?:对)?(?:每名|每位|每个|各|每一)?{_W}(?:个人)?(?:的)?(?:工作表现|个人表现|个人绩效|绩效|工作)?"
            rf"(?:进行)?{_APPRAISE_ZH}",
            rf"{_W}(?:个人)?(?:的)?{_APPRAISE_ZH}(?:结果|工作)?(?:由|以){_C}",
            rf"(?:绩效评定|绩效考核|绩效考评|个人考核|个人绩效)(?:结果)?(?:由|以){_C}",
            *_acts_on_workers(_APPRAISE_ZH[3:-1])),
        "en": _en(
            rf"{_CE}{_EN_MODAL}\s+(?:appraise|evaluate|assess|rate|review|score|grade)s?\s+(?:the\s+)?(?:individual\s+)?"
            rf"(?:performance\s+of\s+)?(?:each\s+of\s+|each\s+|every\s+|any\s+of\s+)?{_THE_WE}",
            rf"performance\s+(?:appraisals?|reviews?|evaluations?|ratings?|assessments?)\s+of\s+(?:each\s+of\s+)?{_THE_WE}"
            rf"\s+(?:shall\s+be|are|is|will\s+be)\s+(?:carried\s+out|conducted|made|done|performed)\s+by\s+{_THE_CE}",
            rf"{_CE}{_EN_MODAL}\s+(?:carry\s+out|conduct|perform|make)s?\s+(?:the\s+)?(?:individual\s+|monthly\s+|"
            rf"annual\s+)*performance\s+(?:appraisals?|reviews?|evaluations?)\s+(?:of|for)\s+{_THE_WE}",
            rf"individual\s+performance\s+(?:appraisals?|reviews?|ratings?)\s+(?:of\s+{_THE_WE}\s+)?(?:by|from)\s+{_THE_CE}")}),
    Family("pay_per_head", "high", {
        "zh-CN": "费用按人数、人头或工时计算，或由甲方直接向乙方人员支付报酬：外包应按交付的工作成果计价。",
        "en": "The fee is counted per head or per hour worked, or the Client pays the Vendor's Workers itself: "
              "outsourcing is priced on the work results delivered."}, {
        "zh-CN": _zh(
            rf"(?:按|按照|以|依据|根据){_gap(8)}{_PAY_BASIS_ZH}{_gap(6)}(?:计算|结算|计费|支付|核算|收费|计价)",
            r"每人每(?:月|天|日|小时)(?:(?:人民币|¥|￥)?\s*[\d,.]+\s*元|的?(?:服务费|费用|单价|报酬|工资))",
            rf"每(?:名|位|个){_W}每(?:月|天|日|小时)",
            rf"{_C}(?:直接)?(?:向|给|为){_W}(?:直接)?(?:支付|发放|结算)(?:工资|薪酬|报酬|加班费|奖金|劳动报酬)",
            rf"{_W}(?:的)?(?:工资|薪酬|劳动报酬|加班费|奖金)(?:由){_C}(?:直接)?(?:支付|发放|承担|核定)",
            r"人头费|人月单价|人天单价|人日单价|按人计费"),
        "en": _en(
            r"\bper\s+(?:head|headcount|capita|worker|person|man-day|man-month|man-hour|person-month|person-day|"
            r"worker-hour)\b",
            r"(?:based\s+on|according\s+to|by\s+reference\s+to|calculated\s+on)\s+(?:the\s+)?(?:number\s+of\s+(?:workers|"
            r"persons|staff|heads|personnel|hours\s+worked|days\s+worked)|headcount|hours\s+worked|man-hours|man-days|"
            r"attendance)",
            r"for\s+each\s+(?:hour|day)\s+worked",
            rf"{_CE}{_EN_MODAL}\s+pays?\s+(?:the\s+)?(?:wages|salaries|remuneration|overtime)\s+(?:of\s+)?(?:directly\s+)?"
            rf"(?:to\s+)?{_THE_WE}",
            rf"{_CE}{_EN_MODAL}\s+pays?\s+{_THE_WE}(?:{_APOS}s?)?\s+(?:their\s+)?(?:wages|salaries|remuneration|overtime)",
            rf"(?:wages|salaries|remuneration)\s+of\s+{_THE_WE}\s+(?:shall\s+be|are|is|will\s+be)\s+paid\s+(?:directly\s+)?"
            rf"by\s+{_THE_CE}")}),
    Family("temporary_posts", "high", {
        "zh-CN": "乙方人员填补甲方的临时性、辅助性或替代性岗位：这是劳务派遣的用工岗位，外包交付的是业务而非岗位上的人。",
        "en": "The Vendor's Workers fill the Client's temporary, auxiliary or substitute posts: those are the posts "
              "of labour dispatch; outsourcing delivers a piece of work, not people for posts."}, {
        "zh-CN": _zh(
            rf"{_W}{_gap(12)}(?:临时性|辅助性|替代性|可替代性){_gap(10, '，,。；;不')}岗位",
            rf"{_W}{_gap(4)}(?:顶替|替代|顶岗|替补|填补)",
            rf"(?:填补|补充|顶替){_C}(?:的)?{_gap(6)}(?:岗位空缺|空缺岗位|缺员|空岗|岗位)",
            rf"(?:按|按照|根据){_C}(?:的)?(?:岗位|用工)需求(?:向甲方)?(?:提供|派遣|派驻|输送|招聘)(?:人员|劳动者|员工)",
            r"(?:派遣|输送)(?:人员|劳动者|员工)?(?:至|到)甲方"),
        "en": _en(
            rf"{_WE}{_en_gap(40)}\b(?:temporary|auxiliary|substitute)\b{_en_gap(40)}\b(?:posts?|positions?|roles?|jobs?)\b",
            rf"(?:fill|cover|staff)\s+{_THE_CLIENTS}\s+(?:vacant\s+|open\s+)?(?:posts?|positions?|vacancies|roles?)",
            rf"(?:stand\s+in\s+for|replace|substitute\s+for|cover\s+for)\s+{_THE_CLIENTS}\s+(?:own\s+)?(?:employees|staff|workers)",
            rf"(?:supply|provide|second|send)\s+(?:workers|staff|personnel|people|labour)\s+(?:to|for)\s+{_THE_CLIENTS}\s+"
            rf"(?:posts?|positions?|roles?|vacancies)")}),
    Family("share_of_workforce", "high", {
        "zh-CN": "乙方人员被计入甲方用工总量或劳务派遣10%比例：这等于承认乙方人员是被派遣劳动者。",
        "en": "The Vendor's Workers are counted in the Client's workforce or its 10% dispatch share: that treats "
              "them as dispatched workers."}, {
        "zh-CN": _zh(
            rf"{_W}{_gap(8)}(?:计入|纳入|占用|列入)甲方(?:的)?{_gap(8)}(?:用工总量|用工比例|劳务派遣|被派遣劳动者|10%|10％|百分之十)",
            rf"{_W}(?:的)?(?:人数|数量|总数|比例)?{_gap(10, '，,。；;')}(?:用工总量|员工总数|用工总数)的?(?:10%|10％|百分之十|十分之一)",
            rf"{_W}{_gap(6)}占{_gap(6)}(?:用工总量|员工总数)的?比例{_gap(8, '，,。；;')}(?:10%|10％|百分之十)"),
        "en": _en(
            rf"{_WE}{_en_gap(20)}\b(?:count|counted|counts|included)\s+(?:towards|toward|in|within)\s+{_THE_CLIENTS}\s+"
            rf"{_en_gap(20)}(?:dispatch|workforce|headcount|10\s*%|ten\s+per\s*cent)",
            rf"(?:number|share|proportion|headcount)\s+of\s+{_THE_WE}\s+(?:shall|may|must|will)?(?:\s+not)?\s*(?:exceed|be\s+"
            rf"more\s+than|be\s+above)\s+(?:10\s*%|ten\s+per\s*cent)")}),
)
FAMILY = {f.key: f for f in FAMILIES}


# --- the scan --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DispatchPhrase:
    family: str
    phrase: str
    start: int
    end: int


# How far back from a phrase a negation can start: its longest word plus the gap the negation
# pattern allows ({0,12} in Chinese, {0,40} in English), with a margin. Reading only this tail of
# the sentence keeps the check linear in the text: searching the whole lead-in of each phrase made
# it quadratic (a 468 KiB clause took 78 s).
_NEGATION_REACH = {"zh-CN": 32, "en": 64}
_SENTENCE_BREAKS = re.compile(r"[。；;.\n]")

LeadIn = Callable[[str, int], str]   # (text, match start) -> the words before the match that may negate it


def bounded_lead_in(text: str, language: str) -> LeadIn:
    """The tail of the sentence before a match, at most `_NEGATION_REACH` characters."""
    reach = _NEGATION_REACH[_lang(language)]
    breaks = [m.start() for m in _SENTENCE_BREAKS.finditer(text)]   # once per text, in order

    def lead_in(_: str, start: int) -> str:
        before = bisect_left(breaks, start)
        sentence_start = breaks[before - 1] + 1 if before else 0
        return text[max(sentence_start, start - reach):start]
    return lead_in


def negated(lead_in: str, language: str) -> bool:
    if _lang(language) == "zh-CN":
        return bool(_ZH_NEGATION.search(lead_in))
    clause = _EN_CONTRAST.split(lead_in)[-1]
    return bool(_EN_NEGATION.search(clause))


def dispatch_matches(text: str, language: str, lead_in: LeadIn | None = None) -> list[DispatchPhrase]:
    """The dispatch signs in `text`, family by family; overlapping matches of one family count once."""
    language = _lang(language)
    lead_in = lead_in or bounded_lead_in(text, language)
    haystack = text if language == "zh-CN" else text.translate(_ASCII_LOWER)
    found: list[DispatchPhrase] = []
    for family in FAMILIES:
        spans = sorted((m.start(), m.end()) for pattern in family.patterns[language]
                       for m in pattern.finditer(haystack)
                       if not negated(lead_in(text, m.start()), language))
        found += [DispatchPhrase(family.key, text[s:e], s, e) for s, e in _merged(spans)]
    return found


def dispatch_phrases(text: str, language: str) -> list[str]:
    """The phrases in `text` that hand the client the management of the vendor's workers."""
    return [m.phrase for m in dispatch_matches(text, language)]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _lang(language: str) -> str:
    return "zh-CN" if language == "zh-CN" else "en"
