"""Delivered images rendered for OpenAI clients: the Images API body and a chat answer's text."""

from __future__ import annotations

import base64

from core.media import GeneratedImages, Picture
from core.transcode.openai_images import image_item, images_body, markdown

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
JPEG = b"\xff\xd8\xff" + b"\1" * 8


def test_a_stored_image_is_its_link_and_an_inline_one_its_bytes_in_base64():
    assert image_item(Picture(PNG, "image/png", "https://gw/v1/files/m1/content?sig=x")) == {
        "url": "https://gw/v1/files/m1/content?sig=x"
    }
    assert image_item(Picture(JPEG, "image/jpeg")) == {"b64_json": base64.b64encode(JPEG).decode()}


def test_the_images_body_keeps_the_order_and_the_creation_time():
    result = GeneratedImages(
        1_700_000_000, (Picture(PNG, "image/png", "https://a"), Picture(JPEG, "image/jpeg"))
    )
    body = images_body(result)
    assert list(body) == ["created", "data"]
    assert body == {
        "created": 1_700_000_000,
        "data": [{"url": "https://a"}, {"b64_json": base64.b64encode(JPEG).decode()}],
    }


def test_an_empty_inline_image_is_still_inline():
    assert image_item(Picture(b"", "image/png")) == {"b64_json": ""}


def test_markdown_numbers_the_images_and_labels_inline_ones_as_png_data_urls():
    result = GeneratedImages(0, (Picture(PNG, "image/png", "https://a/1"), Picture(JPEG, "image/jpeg")))
    first, second = markdown(result).split("\n\n")
    assert first == "![image 1](https://a/1)"
    assert second == f"![image 2](data:image/png;base64,{base64.b64encode(JPEG).decode()})"
    assert markdown(GeneratedImages(0, ())) == ""
