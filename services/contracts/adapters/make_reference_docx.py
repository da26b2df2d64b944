"""Generate reference.docx: the house styles every contract DOCX is laid out on.

Run after changing a style, and commit the output:

    python -m services.contracts.adapters.make_reference_docx

The styles live here as WordprocessingML rather than in a hand-edited binary, so a review shows
exactly which font, size or numbering changed. The writer only picks the language at run time
(w:lang in docDefaults and which article numbering the heading style uses).
"""
from __future__ import annotations

import io
from pathlib import Path

import docx
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import parse_xml
from docx.shared import Cm

from services.contracts.adapters.docx_writer import (
    ARTICLE_NUMBERING,
    FIXED_TIMESTAMP,
    REFERENCE_DOCX,
    repack_deterministically,
)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

# Body in 宋体 (SimSun), headings in 黑体 (SimHei): the usual pairing for Chinese contracts.
# Latin text stays in Times New Roman. Sizes follow Chinese type sizes: 五号 10.5pt body,
# 小四 12pt article headings, 小二 18pt title.
_BODY_FONTS = '<w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman" w:eastAsia="SimSun" w:cs="Times New Roman"/>'
_HEADING_FONTS = '<w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman" w:eastAsia="SimHei" w:cs="Times New Roman"/>'

STYLES_XML = f"""<w:styles xmlns:w="{W_NS}">
  <w:docDefaults>
    <w:rPrDefault><w:rPr>{_BODY_FONTS}<w:kern w:val="2"/><w:sz w:val="21"/><w:szCs w:val="21"/>
      <w:lang w:val="zh-CN" w:eastAsia="zh-CN" w:bidi="ar-SA"/></w:rPr></w:rPrDefault>
    <w:pPrDefault><w:pPr><w:spacing w:after="120" w:line="360" w:lineRule="auto"/><w:jc w:val="both"/></w:pPr></w:pPrDefault>
  </w:docDefaults>
  <w:style w:type="paragraph" w:default="1" w:styleId="Normal">
    <w:name w:val="Normal"/><w:qFormat/>
    <w:rPr>{_BODY_FONTS}</w:rPr>
  </w:style>
  <w:style w:type="character" w:default="1" w:styleId="DefaultParagraphFont">
    <w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/><w:unhideWhenUsed/>
  </w:style>
  <w:style w:type="table" w:default="1" w:styleId="TableNormal">
    <w:name w:val="Normal Table"/><w:uiPriority w:val="99"/><w:semiHidden/><w:unhideWhenUsed/>
    <w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:top w:w="0" w:type="dxa"/>
      <w:left w:w="108" w:type="dxa"/><w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/></w:tblCellMar></w:tblPr>
  </w:style>
  <w:style w:type="numbering" w:default="1" w:styleId="NoList">
    <w:name w:val="No List"/><w:uiPriority w:val="99"/><w:semiHidden/><w:unhideWhenUsed/>
  </w:style>
  <w:style w:type="paragraph" w:styleId="Title">
    <w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>
    <w:pPr><w:spacing w:before="240" w:after="360"/><w:jc w:val="center"/><w:outlineLvl w:val="0"/></w:pPr>
    <w:rPr>{_HEADING_FONTS}<w:b/><w:bCs/><w:sz w:val="36"/><w:szCs w:val="36"/></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="ArticleHeading">
    <w:name w:val="Article Heading"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>
    <w:pPr><w:keepNext/><w:keepLines/><w:numPr><w:ilvl w:val="0"/><w:numId w:val="{ARTICLE_NUMBERING['zh-CN']}"/></w:numPr>
      <w:spacing w:before="240" w:after="120"/><w:jc w:val="left"/><w:outlineLvl w:val="1"/></w:pPr>
    <w:rPr>{_HEADING_FONTS}<w:b/><w:bCs/><w:sz w:val="24"/><w:szCs w:val="24"/></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="BodyAfterTable">
    <w:name w:val="Body After Table"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>
    <w:pPr><w:spacing w:before="200"/></w:pPr>
  </w:style>
  <w:style w:type="paragraph" w:styleId="Header">
    <w:name w:val="header"/><w:basedOn w:val="Normal"/><w:unhideWhenUsed/>
    <w:pPr><w:pBdr><w:bottom w:val="single" w:sz="4" w:space="1" w:color="auto"/></w:pBdr>
      <w:spacing w:after="0" w:line="240" w:lineRule="auto"/><w:jc w:val="right"/></w:pPr>
    <w:rPr><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:styleId="Footer">
    <w:name w:val="footer"/><w:basedOn w:val="Normal"/><w:unhideWhenUsed/>
    <w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/><w:jc w:val="center"/></w:pPr>
    <w:rPr><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="TableText">
    <w:name w:val="Table Text"/><w:basedOn w:val="Normal"/><w:qFormat/>
    <w:pPr><w:spacing w:before="40" w:after="40" w:line="240" w:lineRule="auto"/><w:jc w:val="left"/></w:pPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="TableHeading">
    <w:name w:val="Table Heading"/><w:basedOn w:val="TableText"/><w:qFormat/>
    <w:pPr><w:keepNext/><w:jc w:val="center"/></w:pPr>
    <w:rPr>{_HEADING_FONTS}<w:b/><w:bCs/></w:rPr>
  </w:style>
  <w:style w:type="paragraph" w:customStyle="1" w:styleId="Signature">
    <w:name w:val="Signature Line"/><w:basedOn w:val="Normal"/><w:qFormat/>
    <w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="120" w:after="120"/><w:jc w:val="left"/></w:pPr>
  </w:style>
  <w:style w:type="table" w:customStyle="1" w:styleId="ContractTable">
    <w:name w:val="Contract Table"/><w:basedOn w:val="TableNormal"/><w:qFormat/>
    <w:tblPr><w:tblBorders>
      <w:top w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:left w:val="single" w:sz="4" w:space="0" w:color="auto"/>
      <w:bottom w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:right w:val="single" w:sz="4" w:space="0" w:color="auto"/>
      <w:insideH w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:insideV w:val="single" w:sz="4" w:space="0" w:color="auto"/>
    </w:tblBorders></w:tblPr>
    <w:tblStylePr w:type="firstRow"><w:tcPr><w:shd w:val="clear" w:color="auto" w:fill="E7E6E6"/></w:tcPr></w:tblStylePr>
  </w:style>
  <w:style w:type="table" w:customStyle="1" w:styleId="SignatureTable">
    <w:name w:val="Signature Table"/><w:basedOn w:val="TableNormal"/><w:qFormat/>
    <w:tblPr><w:tblBorders>
      <w:top w:val="nil"/><w:left w:val="nil"/><w:bottom w:val="nil"/><w:right w:val="nil"/>
      <w:insideH w:val="nil"/><w:insideV w:val="nil"/>
    </w:tblBorders></w:tblPr>
  </w:style>
</w:styles>"""


def _article_level(num_format: str, text: str) -> str:
    # The label is followed by a space, not Word's default tab, so "第一条 服务内容" stays together.
    return (
        f'<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="{num_format}"/>'
        f'<w:suff w:val="space"/><w:lvlText w:val="{text}"/><w:lvlJc w:val="left"/>'
        '<w:pPr><w:ind w:left="0" w:firstLine="0"/></w:pPr></w:lvl>'
    )


NUMBERING_XML = f"""<w:numbering xmlns:w="{W_NS}">
  <w:abstractNum w:abstractNumId="0"><w:nsid w:val="51590001"/><w:multiLevelType w:val="singleLevel"/>
    <w:tmpl w:val="51590001"/><w:name w:val="Articles zh-CN"/>{_article_level("chineseCounting", "第%1条")}</w:abstractNum>
  <w:abstractNum w:abstractNumId="1"><w:nsid w:val="51590002"/><w:multiLevelType w:val="singleLevel"/>
    <w:tmpl w:val="51590002"/><w:name w:val="Articles en"/>{_article_level("decimal", "%1.")}</w:abstractNum>
  <w:num w:numId="{ARTICLE_NUMBERING['zh-CN']}"><w:abstractNumId w:val="0"/></w:num>
  <w:num w:numId="{ARTICLE_NUMBERING['en']}"><w:abstractNumId w:val="1"/></w:num>
</w:numbering>"""

# compressPunctuation and the East-Asian line breaking rules make Chinese lines justify the way
# Chinese readers expect; compatibilityMode 15 is Word 2013+ layout.
SETTINGS_XML = f"""<w:settings xmlns:w="{W_NS}">
  <w:zoom w:percent="100"/><w:defaultTabStop w:val="420"/>
  <w:characterSpacingControl w:val="compressPunctuation"/>
  <w:compat><w:spaceForUL/><w:balanceSingleByteDoubleByteWidth/><w:doNotLeaveBackslashAlone/>
    <w:ulTrailSpace/><w:doNotExpandShiftReturn/><w:adjustLineHeightInTable/><w:useFELayout/>
    <w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word" w:val="15"/>
  </w:compat>
  <w:themeFontLang w:val="en-US" w:eastAsia="zh-CN"/>
  <w:decimalSymbol w:val="."/><w:listSeparator w:val=","/>
</w:settings>"""

# Font descriptions let Word and LibreOffice pick a close substitute (a GB2312 serif for SimSun,
# a GB2312 sans for SimHei) on machines without the Windows fonts.
FONT_TABLE_XML = f"""<w:fonts xmlns:w="{W_NS}">
  <w:font w:name="Times New Roman"><w:panose1 w:val="02020603050405020304"/><w:charset w:val="00"/>
    <w:family w:val="roman"/><w:pitch w:val="variable"/></w:font>
  <w:font w:name="SimSun"><w:altName w:val="宋体"/><w:panose1 w:val="02010600030101010101"/><w:charset w:val="86"/>
    <w:family w:val="auto"/><w:pitch w:val="variable"/></w:font>
  <w:font w:name="SimHei"><w:altName w:val="黑体"/><w:panose1 w:val="02010609060101010101"/><w:charset w:val="86"/>
    <w:family w:val="modern"/><w:pitch w:val="fixed"/></w:font>
</w:fonts>"""

APP_XML = """<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">
  <Template>Normal.dotm</Template><Application>Qiyue</Application><DocSecurity>0</DocSecurity>
</Properties>"""

# Parts of python-docx's stock template that a contract does not use.
_UNUSED_RELATIONSHIPS = (
    RT.CUSTOM_XML,
    RT.WEB_SETTINGS,
    RT.THUMBNAIL,
    "http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
)


def build_reference_docx() -> bytes:
    document = docx.Document()
    _replace_part_xml(document.part._styles_part, STYLES_XML)
    _replace_part_xml(document.part.numbering_part, NUMBERING_XML)
    _replace_part_xml(document.part._settings_part, SETTINGS_XML)
    _replace_part_xml(document.part.part_related_by(RT.FONT_TABLE), FONT_TABLE_XML)
    _replace_part_xml(document.part.package.part_related_by(RT.EXTENDED_PROPERTIES), APP_XML)
    _drop_unused_parts(document)
    _set_a4_page(document.sections[0])
    for block in list(document.element.body.iterchildren()):
        if not block.tag.endswith("}sectPr"):
            document.element.body.remove(block)
    _drop_revision_save_ids(document.element)
    properties = document.core_properties
    properties.author = properties.last_modified_by = "Qiyue"
    properties.title = properties.subject = properties.keywords = properties.comments = ""
    properties.created = properties.modified = FIXED_TIMESTAMP
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return repack_deterministically(buffer.getvalue())


def _replace_part_xml(part, xml: str) -> None:
    if hasattr(part, "_element"):
        part._element = parse_xml(xml)
    else:   # python-docx keeps parts it does not model (fontTable) as plain bytes
        part._blob = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + xml).encode()


def _drop_unused_parts(document) -> None:
    for rels in (document.part.rels, document.part.package.rels):
        for r_id, rel in list(rels.items()):
            if rel.reltype in _UNUSED_RELATIONSHIPS:
                del rels[r_id]


def _drop_revision_save_ids(element) -> None:
    # rsid attributes are Word's editing-session ids: noise in a generated document.
    for node in element.iter():
        for name in [name for name in node.attrib if name.startswith(f"{{{W_NS}}}rsid")]:
            del node.attrib[name]


def _set_a4_page(section) -> None:
    # Chinese contracts are printed on A4 with the GB/T 9704 style margins.
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(2.54), Cm(2.54)
    section.left_margin, section.right_margin = Cm(3.17), Cm(3.17)
    section.header_distance, section.footer_distance = Cm(1.5), Cm(1.75)


def main() -> None:
    Path(REFERENCE_DOCX).write_bytes(build_reference_docx())
    print(f"wrote {REFERENCE_DOCX}")


if __name__ == "__main__":
    main()
