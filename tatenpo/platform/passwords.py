"""The password rules: long enough, not one of the passwords every guessing list tries first, not one
character repeated. Used wherever a password is chosen (first-run setup, the users page, the password
change page, `flask create-user`)."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8

# The commonest passwords of public breach lists, keyboard walks (US and JIS layouts alike), and the
# Japanese favourites in romaji. A listed word with digits or symbols tacked on (sakura123, password!) counts too.
_COMMON = """
password passwd pass1234 passw0rd p@ssw0rd p@ssword pa55word pa55w0rd password1 password12 password123
admin administrator admin123 root toor changeme default guest welcome welcome1 letmein letmein1 secret
master login access trustno1 whatever iloveyou loveyou lovely love sunshine princess princesa angel
angels baby babygirl monkey dragon shadow superman batman spiderman ironman starwars pokemon pikachu
football baseball soccer basketball hockey tennis golfer jordan23 michael jennifer jessica ashley
charlie daniel thomas robert andrew joshua matthew michelle nicole hannah amanda samantha harley
hunter ranger buster tigger ginger pepper cookie cheese chocolate butterfly flower summer winter
freedom killer computer internet mustang corvette ferrari porsche mercedes yankees cowboys eagles
qwerty qwerty1 qwerty12 qwerty123 qwertyu qwertyui qwertyuiop qwertz qwertzu azerty azertyuiop
asdf asdfg asdfgh asdfghj asdfghjk asdfghjkl asdf1234 asdfasdf zxcv zxcvb zxcvbn zxcvbnm zxcvbnm1
qazwsx qazwsxedc qazxsw qweasd qweasdzxc 1qaz2wsx 1qaz2wsx3edc zaq12wsx zaq1xsw2 !qaz2wsx 1q2w3e4r
1q2w3e4r5t 1q2w3e4r5t6y q1w2e3r4 q1w2e3r4t5 qwer1234 1234qwer 123qwe 123qweasd qwe123 qwe123qwe
abc123 abcd1234 abc12345 a1b2c3d4 aa123456 a123456 a12345678 1qazxsw2 poiuytrewq lkjhgfdsa mnbvcxz
12345678 123456789 1234567890 0123456789 12341234 123123123 12344321 87654321 98765432 987654321
11223344 112233 123321 147258369 159753 159357 741852963 789456123 147852369 963852741 01234567
135792468 24682468 13579135 123454321 1234512345 0987654321 1029384756 5201314 520520
ichigo nihongo 1qaz2wsx3edc4rfv qawsedrf asdfjkl; zxcvbnm, qwertyuiop@ 1234567890-^
sakura doraemon naruto sasuke onepiece luffy gundam ultraman anpanman shinchan conan pikachu totoro
ponyo kitty hellokitty kirby mario tanjiro nezuko kimetsu evangelion dragonball goku vegeta hatsune
miku hatsunemiku tsubasa hikari hikaru tsubame hayabusa yamato nippon nihon japan tokyo osaka kyoto
yokohama nagoya sapporo fukuoka okinawa hokkaido fujisan fuji arigato arigatou arigatougozaimasu
daisuki aishiteru aishiteruyo konnichiwa konbanwa ohayo ohayou sayonara sayounara ganbare ganbatte
ganbarou kawaii sugoi himitsu pasuwado pasuwaado pasuwa-do tamago sushi ramen udon sake neko inu
nekochan wanwan usagi kuma tanuki kitsune sora umi yuki hana hanako taro tarou ichiro jiro kenji
takashi hiroshi satoshi yamada tanaka suzuki sato satou takahashi watanabe ito kobayashi nakamura
yoshida yamamoto kimura hayashi saito shimizu mori ikeda hashimoto yamaguchi matsumoto inoue
kagawa honda toyota nissan sony yamaha kamisama kokoro tenshi akuma ninja samurai shogun banzai
sakurasaku hanabi matsuri kitsune7 momotaro kintaro urashima tomodachi otaku anime manga ghibli
chibi senpai kouhai sensei baka nyan nyannyan tamagotchi
"""

COMMON_PASSWORDS = frozenset(word.lower() for word in _COMMON.split())

# Digits and the usual symbols added at the end to satisfy a rule: "sakura2024!" is still "sakura".
_TACKED_ON = re.compile(r"[\d!@#$%^&*.?_\-+=~]+$")


def problem(password: str, email: str | None = None) -> str | None:
    """Why this password may not be used, in the user's language; None when it is fine."""
    if len(password) < MIN_LENGTH:
        return str(_l("The password must have at least 8 characters."))
    lowered = password.lower()
    if len(set(lowered)) == 1:
        return str(_l("The password must not be one character repeated."))
    if lowered in COMMON_PASSWORDS or _TACKED_ON.sub("", lowered) in COMMON_PASSWORDS:
        return str(_l("This password is one of the first that attackers try. Choose another."))
    if email and lowered in (email.strip().lower(), email.strip().lower().split("@")[0]):
        return str(_l("The password must not be your email address."))
    return None
