"""A shipped list of the most common passwords (lower case), for the password policy in ``users``.

Drawn from the well-known leaked-password top lists, with the Russian-keyboard favourites (ЙЦУКЕН
rows, transliterated words, "1q2w3e4r"). Passwords shorter than the policy's minimum are refused
for their length anyway; the short ones stay here so that the list reads as what it is.
"""

from __future__ import annotations

_LIST = """
123456 123456789 12345678 12345 1234567 1234567890 111111 000000 123123 1234 qwerty password
qwerty123 qwerty1 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1q2w3e 1qaz2wsx 1qaz2wsx3edc zaq12wsx
zaq1zaq1 zaq1xsw2 zaq12wsxcde3 q1w2e3r4 q1w2e3r4t5 q1w2e3r4t5y6 q1w2e3 qwe123 123qwe 123qweasd
123qweasdzxc qweasd qweasdzxc qweasdzxc123 qazwsx qazwsxedc qazwsxedcrfv qazwsx123 qwertyuiop
qwertyuiop123 asdfghjkl asdfghjkl1 asdfgh zxcvbnm zxcvbnm123 zxcvbn qwerty12 qwerty1234
qwerty12345 qwerty123456 qwertyqwerty 1234qwer 1234qwerty 12345qwert 12345qwerty qwert
qwert12345 password1 password12 password123 password1234 password12345 passw0rd passw0rd1
passw0rd123 p@ssw0rd p@ssword p@ssw0rd123 pa$$word pass pass123 pass1234 password! password01
1password abc123 abc12345 abc123456 abcd1234 abcdef abcdefg abcdefgh abcdefghij abc1234567
a123456 a1234567 a12345678 a123456789 123456a 12345678a 123456789a 1234567890a 1234567890q
123456789q q123456 q1234567 q12345678 q123456789 123456q 1q2w3e4r5t6y7u 1234abcd 123abc
0987654321 987654321 9876543210 0123456789 01234567890 1111111111 11111111 1111111
1111111111111 2222222222 3333333333 5555555555 7777777777 7777777 777777 8888888888 888888
9999999999 999999 0000000000 00000000 121212 123321 654321 666666 112233 123654 159753
159357 147258369 147258 258456 963852741 741852963 1234512345 123454321 1231231230 1212121212
11223344 1122334455 12341234 123123123 123456123456 1234554321 5201314 520520 iloveyou
iloveyou1 iloveyou123 iloveyou2 loveme lovely love123 mylove princess princess1
sunshine sunshine1 monkey monkey123 dragon dragon123 master master123 letmein letmein123 welcome
welcome1 welcome123 welcome2024 welcome2025 welcome2026 admin admin123 admin1234 admin12345
administrator administrator1 root root123 toor changeme changeme123 default guest guest123
test test123 test1234 testtest user user123 login login123 secret secret123 trustno1 trustno1234
football football1 baseball basketball soccer hockey superman superman123 batman batman123
spiderman starwars pokemon pokemon123 naruto michael jennifer jordan23 shadow shadow123 hunter
hunter2 killer charlie charlie123 freedom whatever nothing computer computer1 internet samsung
samsung123 iphone google google123 facebook microsoft windows linux ubuntu myspace1 flower
cookie cheese chocolate maggie buster tigger ginger summer summer2024 winter winter2024
spring autumn hello hello123 hello1234 helloworld hi123456 access access123 matrix matrix123
mustang ferrari porsche harley qwerty7 qwerty11 qwerty01 qwerty2024 asd123 asdasd asdasd123
zxc123 zxczxc 1q1q1q1q aaaaaa aaaaaaaa aaaaaaaaaa abcabc abcabc123 aa123456 aa12345678
q1q1q1q1 z1x2c3v4 1z2x3c4v 1a2b3c4d 1a2s3d4f 1qazxsw2 !qaz2wsx !qaz@wsx 1qaz!qaz 1q2w3e4r!
qwer1234 qwerasdf qwerasdfzxcv 1qa2ws3ed asdf1234 asdfasdf asdfjkl; zxcvbnm1 mnbvcxz
poiuytrewq lkjhgfdsa 123qwe123 qwe123qwe qweqwe qweqweqwe qwe123456 123456qwe 123456qwerty
qwerty123! qwerty123456789 1qazzaq1 passpass passpass123 mypassword mypassword1 yourpassword
password2024 password2025 password2026 parol parol123 parol1234 parolparol parol12345
пароль пароль1 пароль123 пароль1234 парольпароль йцукен йцукен123 йцукен1234 йцукенг
йцукенгш йцукенгшщ йцукенгшщз йцукенгшщзхъ фывапролд фывапролджэ фывапр фыва ячсмить ячсмитьбю
ячсмит 1й2ц3у4к 1й2ц3у4к5е привет привет123 привет1234 любовь любовь123 люблю люблютебя
яулюблютебя пароль2024 админ админ123 наташа наташа123 танечка солнышко солнце котёнок котенок
зайка зайчик мама мама123 мамочка папа россия россия123 москва москва123 спартак спартак123
зенит зенит123 ctrhtn ghbdtn ghbdtn123 gfhjkm gfhjkm123 gfhjkmgfhjkm ntcn ntcnbhjdfybt
zxcvbnmasdfghjklqwertyuiop ktnj rjirf rjntyjr cjkysirj vfvf vfvjxrf ybrjkfq fylhtq dfcz
ghbdtnrfrltkf qwertyu qwertyu1 natasha natasha123 nastya nastya123 anastasia tatiana marina
svetlana svetlana1 olga123 elena elena123 irina irina123 ekaterina katya katya123 masha
masha123 sasha sasha123 alexander alexander1 aleksandr andrey andrey123 dmitry dima dima123
sergey sergey123 maxim maksim vladimir vova vova123 ivan ivan123 nikita nikita123 misha
misha123 pavel roman roman123 denis denis123 artem artem123 alexey alexey123 igor igor123
oleg oleg123 vitaliy mikhail lena123 natalia yulia julia anna anna123 moscow moscow123
russia russia123 spartak spartak1 zenit zenit2024 cska lokomotiv dinamo privet privet123
lubov lublu lyublyu ilovemoscow kotik kotik123 solnce solnyshko zaika zayka zaichik
mama123 mamapapa papa123 qwerty098 1234567890qwerty qwertyuiop1234567890 123456789qwerty
1qwerty 1qwerty1 qwerty1q 1q2w3e4 1q2w3e4r5 q1w2e3r4t5y qazqaz wsxwsx edcedc 12qwaszx
12qwaszx34 1qaz2wsx3edc4rfv zaqwsx zaqxsw xswzaq 123zxc zxc123zxc 123asd asd123asd 1234asdf
1234zxcv zxcv1234 qwe789 789456123 741852 852456 456123 789456 147852 147852369 123789
321654 135790 246810 1357924680 2468013579 000111 010203 102030 112358 314159 3141592653
""".split()

COMMON_PASSWORDS: frozenset[str] = frozenset(p.casefold() for p in _LIST)
