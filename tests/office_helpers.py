"""Sample contracts and WordprocessingML readers shared by the DOCX, redline and LibreOffice tests.

The readers simulate what Word does on "Accept All" / "Reject All", so the redline can be
checked without an office suite; the LibreOffice test then checks the same with a real one.
"""
from __future__ import annotations

import dataclasses
import io
import zipfile

from lxml import etree

from services.contracts.domain.document import (
    Article,
    ContractDocument,
    Paragraph,
    SignatureBlock,
    Table,
)

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W}


def w(tag: str) -> str:
    return f"{{{W}}}{tag}"


# -- sample contracts ----------------------------------------------------------------------------

_ZH_ARTICLES = [
    ("scope", "服务内容", ["乙方为甲方开发“客户服务工单系统”，包括需求分析、设计、编码、测试与上线支持。"]),
    ("term", "合同期限", ["本合同自双方签字盖章之日起生效，有效期为十二个月。"]),
    ("price", "合同价款", ["合同总价为人民币 1,200,000.00 元（大写：壹佰贰拾万元整），含增值税。"]),
    ("payment", "付款方式", [
        "甲方按下列节点分期支付合同价款：",
        Table(("付款节点", "比例", "金额（元）", "付款条件"), (
            ("首付款", "30%", "360,000.00", "合同生效后十个工作日内"),
            ("中期款", "40%", "480,000.00", "系统通过验收测试后"),
            ("尾款", "30%", "360,000.00", "系统稳定运行三个月后"),
        )),
        "乙方应在每期付款前开具等额增值税专用发票。",
    ]),
    ("delivery", "交付与验收", ["乙方应按项目计划交付源代码、部署文档与用户手册。甲方在收到交付物后五个工作日内组织验收。"]),
    ("sla", "服务水平", [
        Table(("指标", "目标值", "考核周期"), (
            ("系统可用性", "≥ 99.5%", "每月"),
            ("一级故障响应时间", "≤ 30 分钟", "每次"),
        )),
        "未达到服务水平的，按附件约定扣减当期服务费。",
    ]),
    ("ip", "知识产权", ["本项目产生的全部交付物的知识产权归甲方所有。"]),
    ("confidentiality", "保密条款", ["双方对在履行本合同过程中知悉的对方商业秘密负有保密义务，保密期限为合同终止后三年。"]),
    ("personnel", "人员管理", ["乙方派驻人员应遵守甲方的安全与考勤制度，乙方更换核心人员须提前十日书面通知甲方。"]),
    ("breach", "违约责任", ["任何一方违约的，应赔偿守约方因此遭受的直接损失。乙方逾期交付的，每逾期一日按合同总价的千分之一支付违约金。"]),
    ("termination", "合同解除", ["一方严重违约且在收到书面通知后十五日内未纠正的，守约方有权解除本合同。"]),
    ("disputes", "争议解决", ["因本合同引起的争议，双方应协商解决；协商不成的，提交甲方所在地人民法院诉讼解决。"]),
]

_EN_ARTICLES = [
    ("scope", "Scope of Services", ["The Supplier shall develop a customer service ticketing system for the Client, including analysis, design, coding, testing and go-live support."]),
    ("term", "Term", ["This Contract takes effect on the date both parties sign and seal it and remains in force for twelve months."]),
    ("price", "Contract Price", ["The total contract price is RMB 1,200,000.00, inclusive of VAT."]),
    ("payment", "Payment", [
        "The Client shall pay the contract price in the following tranches:",
        Table(("Milestone", "Share", "Amount (RMB)", "Condition"), (
            ("Advance payment", "30%", "360,000.00", "Within ten business days after the Contract takes effect"),
            ("Interim payment", "40%", "480,000.00", "After the system passes acceptance testing"),
            ("Final payment", "30%", "360,000.00", "After three months of stable operation"),
        )),
        "The Supplier shall issue a VAT invoice before each payment.",
    ]),
    ("delivery", "Delivery and Acceptance", ["The Supplier shall deliver the source code, deployment guide and user manual. The Client shall arrange acceptance within five business days of delivery."]),
    ("sla", "Service Levels", [
        Table(("Metric", "Target", "Period"), (
            ("System availability", ">= 99.5%", "Monthly"),
            ("Severity 1 response time", "<= 30 minutes", "Per incident"),
        )),
        "Service credits apply as set out in the Schedule when a service level is missed.",
    ]),
    ("ip", "Intellectual Property", ["All intellectual property in the deliverables belongs to the Client."]),
    ("confidentiality", "Confidentiality", ["Each party shall keep the other party's trade secrets confidential for three years after termination."]),
    ("personnel", "Personnel", ["The Supplier's on-site staff shall follow the Client's security rules; the Supplier shall give ten days' written notice before replacing key personnel."]),
    ("breach", "Liability for Breach", ["A party in breach shall compensate the other party for its direct losses. For late delivery the Supplier shall pay 0.1% of the contract price per day of delay."]),
    ("termination", "Termination", ["Either party may terminate this Contract if the other party commits a material breach and fails to cure it within fifteen days of written notice."]),
    ("disputes", "Disputes", ["Disputes shall be settled by negotiation, failing which they shall be submitted to the court where the Client is domiciled."]),
]


def _articles(spec) -> tuple[Article, ...]:
    return tuple(
        Article(key, heading, tuple(Paragraph(b) if isinstance(b, str) else b for b in blocks))
        for key, heading, blocks in spec
    )


def sample_zh() -> ContractDocument:
    return ContractDocument(
        language="zh-CN",
        title="软件开发外包服务合同",
        number="QY-2024-0042",
        version=3,
        preamble=(Paragraph("甲方（委托方）：上海示例科技有限公司"), Paragraph("乙方（受托方）：杭州示例软件有限公司"),
                  Paragraph("双方经友好协商，就软件开发外包事宜订立本合同。")),
        articles=_articles(_ZH_ARTICLES),
        signature_blocks=(
            SignatureBlock("甲方", "上海示例科技有限公司"),
            SignatureBlock("乙方", "杭州示例软件有限公司"),
        ),
        closing=(Paragraph("（以下无正文）"),),
    )


def sample_en() -> ContractDocument:
    lines = ("Authorised signatory:", "Date:", "(Company seal)")
    return ContractDocument(
        language="en",
        title="Software Development Outsourcing Contract",
        number="QY-2024-0043",
        version=2,
        preamble=(Paragraph("Client: Example Technology (Shanghai) Co., Ltd."),
                  Paragraph("Supplier: Example Software (Hangzhou) Co., Ltd.")),
        articles=_articles(_EN_ARTICLES),
        signature_blocks=(
            SignatureBlock("Party A (Client)", "Example Technology (Shanghai) Co., Ltd.", lines),
            SignatureBlock("Party B (Supplier)", "Example Software (Hangzhou) Co., Ltd.", lines),
        ),
        closing=(Paragraph("IN WITNESS WHEREOF the parties have signed this Contract."),),
    )


def _edit_article(doc: ContractDocument, key: str, **changes) -> tuple[Article, ...]:
    return tuple(dataclasses.replace(a, **changes) if a.clause_key == key else a for a in doc.articles)


def revised_zh() -> ContractDocument:
    """Next version of sample_zh: edited clauses, a changed tranche, one article dropped, one added."""
    old = sample_zh()
    articles = list(old.articles)
    by_key = {a.clause_key: a for a in articles}
    by_key["term"] = dataclasses.replace(by_key["term"], blocks=(Paragraph("本合同自双方签字盖章之日起生效，有效期为二十四个月，期满前三十日内双方可书面续约。"),))
    payment = by_key["payment"]
    table = payment.blocks[1]
    by_key["payment"] = dataclasses.replace(payment, blocks=(
        payment.blocks[0],
        Table(table.header, (table.rows[0], ("中期款", "50%", "600,000.00", "系统通过验收测试后"),
                             ("尾款", "20%", "240,000.00", "系统稳定运行六个月后"))),
        Paragraph("乙方应在每期付款前十日开具等额增值税专用发票。"),
    ))
    by_key["sla"] = dataclasses.replace(by_key["sla"], heading="服务水平与考核")
    new_articles = [by_key[a.clause_key] for a in articles if a.clause_key != "personnel"]
    position = [a.clause_key for a in new_articles].index("breach")
    new_articles.insert(position, Article("data", "数据安全", (
        Paragraph("乙方应按照《中华人民共和国个人信息保护法》处理甲方客户数据，不得用于本合同以外的目的。"),
        Paragraph("发生数据泄露的，乙方应在二十四小时内通知甲方。"),
    )))
    return dataclasses.replace(old, version=4, articles=tuple(new_articles),
                               preamble=old.preamble[:2] + (Paragraph("双方经平等协商，就软件开发外包服务事宜订立本合同。"),))


def revised_en() -> ContractDocument:
    old = sample_en()
    by_key = {a.clause_key: a for a in old.articles}
    by_key["term"] = dataclasses.replace(by_key["term"], blocks=(Paragraph("This Contract takes effect on the date both parties sign and seal it and remains in force for twenty-four months."),))
    by_key["breach"] = dataclasses.replace(by_key["breach"], blocks=(Paragraph("A party in breach shall compensate the other party for its direct and foreseeable losses. For late delivery the Supplier shall pay 0.05% of the contract price per day of delay, capped at 10%."),))
    payment = by_key["payment"]
    table = payment.blocks[1]
    by_key["payment"] = dataclasses.replace(payment, blocks=(
        payment.blocks[0],
        Table(table.header, table.rows[:2] + (("Retention", "10%", "120,000.00", "After the warranty period"),
                                              ("Final payment", "20%", "240,000.00", "After three months of stable operation"))),
        payment.blocks[2],
    ))
    articles = [by_key[a.clause_key] for a in old.articles if a.clause_key != "ip"]
    articles.append(Article("notices", "Notices", (Paragraph("Notices shall be given in writing to the addresses on the first page."),)))
    return dataclasses.replace(old, version=3, articles=tuple(articles))


# -- reading WordprocessingML ------------------------------------------------------------------


def read_part(docx_bytes: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as archive:
        return archive.read(name)


def body(docx_bytes: bytes) -> etree._Element:
    return etree.fromstring(read_part(docx_bytes, "word/document.xml")).find(w("body"))


def resolve_changes(docx_bytes: bytes, accept: bool) -> etree._Element:
    """The document body as Word's Accept All (accept=True) or Reject All would leave it."""
    root = body(docx_bytes)
    kept, dropped = ("ins", "del") if accept else ("del", "ins")
    # Rows first: a dropped row goes with everything in it.
    for row in root.iter(w("tr")):
        if row.find(f"w:trPr/w:{dropped}", NS) is not None:
            row.getparent().remove(row)
    for table in list(root.iter(w("tbl"))):
        if table.find("w:tr", NS) is None:
            table.getparent().remove(table)
    for change in list(root.iter(w(dropped))):
        if change.getparent().tag != w("rPr"):      # paragraph marks are handled below
            change.getparent().remove(change)
    for change in list(root.iter(w(kept))):
        parent = change.getparent()
        if parent.tag in (w("rPr"), w("trPr")):
            parent.remove(change)
            continue
        index = parent.index(change)
        for child in reversed(list(change)):
            parent.insert(index, child)
        parent.remove(change)
    for text in root.iter(w("delText")):
        text.tag = w("t")
    _merge_dropped_paragraph_marks(root, dropped)
    return root


def _merge_dropped_paragraph_marks(root: etree._Element, dropped: str) -> None:
    """A removed paragraph mark joins its paragraph with the next one in the same container."""
    for mark in list(root.iter(w(dropped))):
        paragraph = mark.getparent().getparent().getparent()     # w:p/w:pPr/w:rPr/w:ins|del
        mark.getparent().remove(mark)
        runs = [child for child in paragraph if child.tag != w("pPr")]
        following = paragraph.getnext()
        if following is None or following.tag != w("p"):
            # Nothing to join with (a table follows): only an emptied paragraph may go.
            assert not paragraph_text(paragraph), "text would be lost joining a paragraph to a table"
        else:
            if paragraph_text(paragraph):
                # Word and LibreOffice keep the first paragraph's formatting unless it is empty.
                _copy_paragraph_style(paragraph, following)
            insert_at = 1 if following.find("w:pPr", NS) is not None else 0
            for run in reversed(runs):
                following.insert(insert_at, run)
        paragraph.getparent().remove(paragraph)


def _copy_paragraph_style(source: etree._Element, target: etree._Element) -> None:
    target_pPr = target.find("w:pPr", NS)
    if target_pPr is None:
        target_pPr = etree.SubElement(target, w("pPr"))
        target.insert(0, target_pPr)
    for child in [c for c in target_pPr if c.tag != w("rPr")]:
        target_pPr.remove(child)
    source_pPr = source.find("w:pPr", NS)
    for index, child in enumerate(c for c in (source_pPr if source_pPr is not None else []) if c.tag != w("rPr")):
        target_pPr.insert(index, child)


def paragraph_text(paragraph: etree._Element) -> str:
    parts = []
    for node in paragraph.iter(w("t"), w("delText"), w("tab"), w("br")):
        parts.append({w("tab"): "\t", w("br"): "\n"}.get(node.tag, node.text or ""))
    return "".join(parts)


def block_texts(container: etree._Element) -> list[str]:
    """Text of each paragraph in reading order, table cells included."""
    return [paragraph_text(p) for p in container.iter(w("p"))]


def restructured_zh() -> ContractDocument:
    """Harder edits of sample_zh: paragraphs next to tables, reshaped table, moved article, new signatory."""
    old = sample_zh()
    by_key = {a.clause_key: a for a in old.articles}
    payment = by_key["payment"]
    table = payment.blocks[1]
    by_key["payment"] = dataclasses.replace(payment, blocks=(   # intro paragraph gone, a column added
        Table(table.header + ("发票类型",), tuple(row + ("增值税专用发票",) for row in table.rows)),
        payment.blocks[2],
    ))
    penalty = Article("penalty", "服务费扣减", (
        Table(("可用性", "扣减比例"), (("99.0% – 99.5%", "5%"), ("低于 99.0%", "10%"))),
        Paragraph("扣减总额不超过当月服务费的百分之二十。"),
    ))
    order = ["scope", "term", "price", "payment", "delivery", "confidentiality", "ip", "personnel", "breach",
             "termination", "disputes"]                      # sla removed, ip moved after confidentiality
    articles = [by_key[key] for key in order]
    articles.insert(order.index("breach") + 1, penalty)
    return dataclasses.replace(
        old, version=5, articles=tuple(articles), closing=(),
        signature_blocks=(old.signature_blocks[0], SignatureBlock("乙方", "杭州示例信息技术有限公司"),
                          SignatureBlock("丙方（担保方）", "南京示例担保有限公司")),
    )
