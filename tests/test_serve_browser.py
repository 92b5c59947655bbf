"""The page of `python -m cwgan.serve` in a real browser: headless Chromium, driven by
Selenium, clicks a class and checks that that class's images appear, pixel for pixel
those of `cwgan.sample` for the same seed.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium
chromium-driver`; `.ci/run` installs them) and selenium (requirements-test.txt);
skipped, saying so, where they are missing. `CWGAN_SCREENSHOT=path.png` also saves a
screenshot of the page there (docs/serve_page.png is one).
"""

import base64
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import cwgan
from conftest import serving
from cwgan.serving.app import make_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOW_TO_ENABLE = ("needs Debian's chromium and chromium-driver: run `apt-get install chromium "
                 "chromium-driver` as root (and `pip install -r requirements-test.txt` for "
                 "selenium), then run this test again")

webdriver = pytest.importorskip("selenium.webdriver", reason=HOW_TO_ENABLE)
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(HOW_TO_ENABLE, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1000,760"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def shown_images(driver, label, n):
    """Waits until the samples box shows `n` images of `label`; returns their pixels."""
    def ready(d):  # one snapshot in the page: the images may be replaced meanwhile
        images = d.execute_script(
            "return Array.from(document.querySelectorAll('#samples img'))"
            ".map(i => [i.dataset.label, i.src]);")
        return images if len(images) == n and all(
            shown == str(label) for shown, _ in images) else False

    images = WebDriverWait(driver, 60).until(ready)
    pixels = []
    for _, src in images:
        data = base64.b64decode(src.split(",", 1)[1])
        pixels.append(tf.io.decode_png(data).numpy()[..., 0].astype(int))
    return np.stack(pixels)


def expected(label, n, seed):
    return np.round(cwgan.sample(label=label, n=n, seed=seed,
                                 checkpoint_dir=cwgan.PRETRAINED_DIR) * 255)


def test_clicking_a_class_shows_that_classs_images(browser):
    with serving(make_app(cwgan.PRETRAINED_DIR, reload_seconds=0)) as base:
        browser.get(base + "/")
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        buttons = browser.find_elements(By.CSS_SELECTOR, "#classes button")
        assert [b.text for b in buttons] == list("0123456789")
        for field, value in (("n", "6"), ("seed", "3")):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)

        browser.find_element(By.CSS_SELECTOR, '#classes button[data-label="7"]').click()
        sevens = shown_images(browser, 7, 6)
        assert np.abs(sevens - expected(7, 6, 3)).max() <= 1  # PNG's 8 bits
        assert browser.current_url.endswith("?label=7&n=6&seed=3")  # a link to this view

        browser.find_element(By.CSS_SELECTOR, '#classes button[data-label="2"]').click()
        twos = shown_images(browser, 2, 6)
        assert np.abs(twos - expected(2, 6, 3)).max() <= 1
        assert np.abs(twos - sevens).mean() > 10  # the class changed the pixels

        browser.find_element(By.ID, "morph-button").click()
        WebDriverWait(browser, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#morph img")) == 8)
        assert browser.find_element(By.ID, "error").text == ""
        if os.environ.get("CWGAN_SCREENSHOT"):
            browser.save_screenshot(os.environ["CWGAN_SCREENSHOT"])

        browser.get(base + "/?label=5&n=4&seed=9")  # the shared link shows that view
        fives = shown_images(browser, 5, 4)
        assert np.abs(fives - expected(5, 4, 9)).max() <= 1
