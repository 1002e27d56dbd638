"""Where a study's released data comes from: one resolver for every study.

`resolve(name, path)` finds a registered dataset and says where it came from. It tries, in order:

1. ``explicit``: `path`, when given (a study's ``--set data=PATH``);
2. ``env``: the environment variable ``LMLAB_DATA_<NAME>`` (the name upper-cased, ``-`` -> ``_``:
   ``LMLAB_DATA_COLPRET``, ``LMLAB_DATA_PEOPLEJOIN_QA``);
3. ``package``: the copy that ships inside lmlab (``lmlab/datasets/<name>/``, compressed), unpacked
   once into the cache folder named by its checksum;
4. ``cache``: that cache folder, ``$LMLAB_CACHE/data/<name>/<checksum>/`` (``$LMLAB_CACHE``
   defaults to ``$XDG_CACHE_HOME/lmlab``, else ``~/.cache/lmlab``), left by an earlier download;
5. ``download``: every file from the source repository at its pinned commit, each checked against
   its SHA-256 before the folder is moved into the cache. A file that does not match is refused
   and nothing is left in the cache; with no network the error is one line.

Every source gives a folder of plain files. Explicit and environment paths are taken as they are
(the files a study needs must be there); the other three are checked file by file against the
table below. `DataSource.sha256` is the checksum of a manifest (every file's name and SHA-256,
sorted by name), so the same files give the same checksum whatever the source, and a run's
``result.json`` can record it (`DataSource.to_metrics`).

Downloads go to ``https://raw.githubusercontent.com/<repo>/<commit>/<path>``; the environment
variable ``LMLAB_MIRROR_URL`` replaces ``https://raw.githubusercontent.com/`` with another server
laid out the same way (the tests use a local one).

>>> src = resolve("peoplejoin-qa")                     # doctest: +SKIP
>>> src.source, (src.path / "dev.jsonl").is_file()     # doctest: +SKIP
('package', True)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any, Literal

from lmlab.errors import LmlabError

__all__ = [
    "DATASETS",
    "DataFile",
    "DataSource",
    "Dataset",
    "cache_dir",
    "cache_root",
    "dataset",
    "env_var",
    "manifest_sha256",
    "packaged_dir",
    "resolve",
    "sha256_file",
]

Source = Literal["explicit", "env", "package", "cache", "download"]
RAW_BASE = "https://raw.githubusercontent.com/"
MIRROR_ENV = "LMLAB_MIRROR_URL"
TIMEOUT_S = 60.0


# -- the registry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its path inside the dataset's folder, SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int
    upstream: str | None  # its path in the source repository at the pinned commit; None: derived


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its files and where they come from."""

    name: str
    repo: str  # "owner/name" on GitHub
    commit: str  # the pinned commit (40 hex digits)
    licence: str
    package: str  # its folder under lmlab/datasets/
    files: tuple[DataFile, ...]
    required: tuple[str, ...]  # what an explicit folder must hold
    archive: str | None = None  # a .tar.gz in the package folder holding the files not beside it
    accepts_file: bool = False  # whether an explicit path may name one file instead of a folder
    note: str = ""  # why a dataset cannot be downloaded, when one of its files is derived

    @property
    def sha256(self) -> str:
        """The checksum of this dataset's manifest."""
        return manifest_sha256((f.name, f.sha256) for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def url(self, f: DataFile) -> str:
        """Where `f` is downloaded from (the mirror of `MIRROR_ENV`, else GitHub's raw files)."""
        base = os.environ.get(MIRROR_ENV) or RAW_BASE
        path = urllib.parse.quote(f"{self.repo}/{self.commit}/{f.upstream}")
        return base.rstrip("/") + "/" + path


def _table(text: str, upstream: dict[str, str], prefix: str | None) -> tuple[DataFile, ...]:
    """Files from lines of `sha256 size name`; a file's upstream path is `upstream[name]`, else
    `prefix + name` (None without a prefix: the file is derived, not in the repository)."""
    out = []
    for line in text.strip().splitlines():
        digest, size, name = line.split()
        up = upstream.get(name, None if prefix is None else prefix + name)
        out.append(DataFile(name, digest, int(size), up))
    return tuple(out)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        # The checkpoint losses of "A Hitchhiker's Guide to Scaling Law Estimation" (Choshen,
        # Zhang, Andreas 2024), as one compact table rebuilt from IBM/ColPret; its PROVENANCE.md
        # says how. Used by scaling-laws.
        Dataset(
            name="colpret",
            repo="IBM/ColPret",
            commit="16f23bbe054277ddc4afd07a972dd7cfbe3f48c3",
            licence="MIT (bimix rows: Apache-2.0)",
            package="colpret",
            files=_table("""
9816fb12b11c33c552f4e8621879d0da493be47c0f86be785b53a2cf7f7ae4c6    1088 LICENSE
c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4   11357 LICENSE.bimix-law
759f92f452f6e2e85d57d1f4490cdf6c17ca441c0182b5897958402fed81e78b 1486511 compact.csv
""", {"LICENSE": "LICENSE", "LICENSE.bimix-law": "raw_data/bimix-law/LICENSE"}, None),
            required=("compact.csv",),
            accepts_file=True,
            note="compact.csv is derived from the repository (it ships inside lmlab; "
                 "`lmlab scaling-laws import-colpret` rebuilds most of it from the release)",
        ),
        # PeopleJoin-QA (Jhamtani, Andreas, Van Durme 2025): the 852 dev items, the 500 test ids
        # the paper evaluates, and 140 of the 143 organizations (the three of 4 MiB or more are
        # not here). Organizations derive from Spider (CC BY-SA 4.0). Used by peoplejoin.
        Dataset(
            name="peoplejoin-qa",
            repo="microsoft/peoplejoin",
            commit="8470d73f834b53c7f3b49f83e9a0eb3d349f7454",
            licence="CDLA-Permissive-2.0 (organizations derived from Spider, CC BY-SA 4.0)",
            package="peoplejoin_qa",
            archive="peoplejoin-qa.tar.gz",
            files=_table("""
b0cde94c004a71252513c53222a89736fbb8eda7c3638a40d18d3e1f7da09ef9    2371 DATA_LICENSE.md
e4281dcf464dd3517eaa7fded865d7d1d7fb61bdaea5338aa1a8cec5d184f260  599487 dev.jsonl
2b4d8400a697771860314a9975a811d44b808b746b13644181502a5a767cca32   23263 selected_test_ids.txt
3d38a6cb9a2f900a9a222a2bbbbf966807eb60fb4e0627ebdc06a8789b304336   10947 tenant_data_v2/allergy_1.json
8492b7c64c8fde5d88275036ed22c372a96cd3b1aedf14cad736f86aa4068cab   17556 tenant_data_v2/apartment_rentals.json
3061fe7fde1863208eeeed1cf374e67dc56c3bd5962f2429df059e0c81243542    6132 tenant_data_v2/architecture.json
52e5fb0668ca65636e47805f3051e781b177abbf15379d10510d7bae45c4c46e   34528 tenant_data_v2/assets_maintenance.json
86cddbe963fc32099539ba887c69c423a38e23534e16313a5ce6ca13b921542b    6298 tenant_data_v2/battle_death.json
1b688d4b9a6e069fc4a0e3e4380223818164a9edd4c72d4efa254ecd6390543b   31627 tenant_data_v2/behavior_monitoring.json
8541017e16017eadb4aec195b7c1b8779b95303bc40d701ecc91ab8326f49061    2860 tenant_data_v2/body_builder.json
968859ab5559e376e554b6d6ccf81a7e039c4cf2d6dc9f67ce7e520571a2a7bf    3199 tenant_data_v2/book_2.json
a1e515d849d2ee719a4be3a10e5855a21645dbeb8c6aeec2f1d6e9d89a566458    3991 tenant_data_v2/candidate_poll.json
e62512742dcb86a21b505dd86f60663abacd153abb272bcb6ed193a4d498205e   97082 tenant_data_v2/car_1.json
7c8f17a27b43d76f5df1a579541956421fcf3620398d097e02ca7c38c5635021    5795 tenant_data_v2/cinema.json
efd0bbd06945337ab87b6864150e6ea1908f52dbf2a4a66adf72c0f6375f8ab1    7812 tenant_data_v2/city_record.json
ce0599b5571d5ae671103238715a002ae6786b6f6ee03330a632a7c695f8a9e4    3944 tenant_data_v2/climbing.json
e0555fbb065eddefb7f200dd16678fb808ee87bed7c3d90c8b88d93598ff349e    8555 tenant_data_v2/club_1.json
5f7f0f07524a1d27a818a39591fe0f742a018ebc0469469f343f151cb548f9c1    7309 tenant_data_v2/coffee_shop.json
e069cf738939df44762d5913547fced95053d90926094f9495b693ad932659f3   16627 tenant_data_v2/college_1.json
df3a6a04809737595c8dc161ccac5af07a3bb1a2a05ce16c690b62eb345cff17   54048 tenant_data_v2/college_3.json
44a2d6990a1ed124889e1483c1b84434d2e2f61c180292c11626017dd4f45567    8693 tenant_data_v2/company_1.json
4241f64ad481c2c6aaa76c2e5fe8691e3af351c8d1ca6218d04f14128f10dedb    7716 tenant_data_v2/company_employee.json
478c366b2e757779ed93056f9fa71b4c5fd2ff8b83f150d2111404c2d8b7f562    9686 tenant_data_v2/company_office.json
943e37e4cef2f4c2df6bc28abee82db7b81662dfd3043af6b1d3c965d15f4af7    5407 tenant_data_v2/concert_singer.json
540214f81ddad16c66bca3de816a0f68c1312c5aa6583d4870e496b2d104971d    4022 tenant_data_v2/course_teach.json
8034da2478b27bb9f42067231f9918693d83ba045670d232b35e6fb4111d5573   14756 tenant_data_v2/cre_Doc_Control_Systems.json
303cb4cd31fc76a1326617e3382b6af2acc714bca3ec1d366acb25ce74b29e9e    9303 tenant_data_v2/cre_Doc_Template_Mgt.json
f856523b538669fe0a027d63a68d2446f3291da64d8cc14146f2cc9cbec8c7a2   16700 tenant_data_v2/cre_Doc_Tracking_DB.json
60c8ea91b0b84b1ab286ecfc0c4f4456f7248db5661f73a71eafbc611daf1a8a    7098 tenant_data_v2/cre_Docs_and_Epenses.json
9afce73599982114e0a90f48b857f05ace4cf62af3857cc026f5064e87e76b3d   51115 tenant_data_v2/cre_Drama_Workshop_Groups.json
d2c417afc2498ecc477cc729f7a18c66638dd5b899d396000f4606c914dbea9b   25934 tenant_data_v2/cre_Theme_park.json
9da2b221256fb4b2ad1a4b334517684cfce399acae36905970b0e7b995e5c343  157797 tenant_data_v2/csu_1.json
a3aadbd4d0c9a4175f04b996135582fb004c7fb88a5252ce8271bae9b768a72e    7444 tenant_data_v2/culture_company.json
a4ba2824e84254fa454e390741f0150ff3e1575538d8d9e62a542e45ba146662    7336 tenant_data_v2/customer_complaints.json
17cfe1ce2dde87bee0605413f5ff826f4d41d231a00cf67e53c73eae4dd722d6   17433 tenant_data_v2/customers_and_addresses.json
e9da403463f44fc2e1548a0c4640024f0f8cb4a66ffdc05315e4b26e0e1fdc32   27501 tenant_data_v2/customers_and_invoices.json
7f564d26bae1649e71c0d6a9d6ba0135370a57306d384152546c4ac86302b06c   18341 tenant_data_v2/customers_and_products_contacts.json
ef7804758bd2b3be83f754c84a44e8f9c2375ac44d6bade01f74c05987175b8b   23765 tenant_data_v2/customers_campaigns_ecommerce.json
77c9e1b5ad6e0741d896326b6603e7e936bed15ef0c262cb4ce9380beba1e286   12788 tenant_data_v2/customers_card_transactions.json
22e9fed2f4ea5fbfb6ad7b7c9ee461234e4b1a4c187526e9762b2edd535d82e0    4886 tenant_data_v2/debate.json
b945d4e584458b11aa3d86b5880f0ad8803645f3b2dead52b3176831fea6c38a    3979 tenant_data_v2/decoration_competition.json
1fc2153dfc6837294e4e5af3dca463c4866fab625b8916ac2ebbba244162bcdc    6139 tenant_data_v2/department_management.json
153c6301bd2a14056d704d70c1dd38c2f8506589cf22f5a80da533cd691dc1a2   32062 tenant_data_v2/department_store.json
03d7b6af1b119c790d49066c915aacb27483a3a38b7de7c3e22df1b2063f13e1    5552 tenant_data_v2/device.json
1969c24d7a185a784b6f847d91327cd7351c510c022cb1bea257de22cf031f11   16205 tenant_data_v2/document_management.json
a97bb84f15a8badc63fdf253cf5f322a5d0427184d2de7ff30dc4e04aa7d19cd   23976 tenant_data_v2/dog_kennels.json
de25ea2961901e476b5fcd9cb14b27378af806984452a022def6d939db08d552   13513 tenant_data_v2/dorm_1.json
583165cb1e652507743fc8016720a5cc48c335a3913d1697fcf3ce724cbecd1e   16120 tenant_data_v2/driving_school.json
f1211df8f61f9a2c8883b3d56536bca1667fe2975e561653b8608acad34f75db   23818 tenant_data_v2/e_government.json
cfecbe70b2022c14ac7633ec15b33b4699d8e3fa2408ba6f0a73bda0721d72eb   17520 tenant_data_v2/e_learning.json
a232e790531d90955b9c82c233121d8d9dd2511c57e4b3cfe124540a4bf6ad3e    6709 tenant_data_v2/election.json
1fd819bfa342cc2eafa4b9bee9a8c33edc205bf3dcc5a1e48c3e1ae76e8de9e6    3682 tenant_data_v2/election_representative.json
c14bb6583f2493fc244c2848f31b76cf9bcbed2181169a92e5ec027571c7986d    5773 tenant_data_v2/employee_hire_evaluation.json
9b2ee51c4078ba279f09c48a3dd0faba26a3d080763515d9db3eafe21d8bb3bc    4080 tenant_data_v2/entertainment_awards.json
8985214c59e0b9824b4ddc32c9b7d5aaa2358290c5a47084e3f8ff9a52c9dea1    3632 tenant_data_v2/entrepreneur.json
2769773847f0c6ebcfdaa3fbbdcf7d60849dcb70df0951c9c8be949e162c4282    3113 tenant_data_v2/epinions_1.json
c90118009cacf2a147d06d9b6605a3652b5a6ce27fd20a45d83f6dbc5c7859e3    5652 tenant_data_v2/farm.json
a5f7b730e1bea33f0fc43f1462c526f48e7befef03e09100a1d1401db9bf79d4    6294 tenant_data_v2/film_rank.json
d3bcfa918aa7fd497d5cdfb76bc1f1f3b14a36ccb48c139c8e9b419c4a8e573f    8435 tenant_data_v2/flight_1.json
08573e6bff0fafe51d14cb802c6d2091f855e0e7d77666c901e0b233a0399c59  148025 tenant_data_v2/flight_2.json
06e4ab4dd1ee6a52c8e36924b6288a67b02d24a4c03fdca94dc637dcb10070b6    8714 tenant_data_v2/flight_company.json
61dc5aad53d04ec3454e0431fccaa3fff097f269da80d2cfa63f16fe6eb1c39c    8702 tenant_data_v2/game_1.json
eb6cd617b015e5db390bdd7a46475c4f83f8816f3a9afd35ad0abbbddfff0f77   11198 tenant_data_v2/game_injury.json
2390bf6f431d29f863b68b32687ce988e69b37fd245d01a7b5bf7a0f0fd7ae58    7711 tenant_data_v2/gas_company.json
8f903cdc1121c1492115f42154eb669ba80fb53b4267a4574fee619c86a632c0    4258 tenant_data_v2/gymnast.json
057612b5b978ef365777728225eb9f11a2f467b7f0b91be00d13249c079d744c   44497 tenant_data_v2/hr_1.json
510be8f0c7cdd9e276ca68d45754c21734f011fe24fd7c8734a852dc14053b0f    3991 tenant_data_v2/icfp_1.json
c4a37db3670dabd21f4334747a9eb23ad4141910e934295b4c082e3389421095  122246 tenant_data_v2/inn_1.json
383ebd2ab713e8fa5ad5b5e18ced31cadb9c0588510fc354c5907ffb349d06a1   11547 tenant_data_v2/insurance_and_eClaims.json
5984bdef4d4bf18bb50fe37d12a700cf7e28f4cd7a4ecf4899f69e9565687108   10868 tenant_data_v2/insurance_fnol.json
0aa1b6fd1f70c3f9a23f7355ffcf59d4d3dd871884fb4c8dca783df167ef02dd   11307 tenant_data_v2/insurance_policies.json
b993239780af831d257b1eff3cef0355a6160787f31179ee0dc6b39ed80d1036    5262 tenant_data_v2/journal_committee.json
834be9f48f81ed265d3d0a3dd4ef5e34f408fabd04f18f0708de7a9edaa3f552    3556 tenant_data_v2/loan_1.json
30bfcf858187be8f7638c165fd754c66646c8e2cbf0ff85a6c80f62fea42201b   26903 tenant_data_v2/local_govt_and_lot.json
f1a7448151fea3075471b35e9929283e0e49f585eb6a77aaacf9e2c8396bdb5e    5637 tenant_data_v2/local_govt_in_alabama.json
a59bd0677cb66fff42659cb45aa176586f1e93163252398cccb6b73385870acb    8762 tenant_data_v2/local_govt_mdm.json
7ecd66ed7a143d9b69411139df31f0cdfb4c6a27df7850f85a43c21b3ee7bc96    6638 tenant_data_v2/machine_repair.json
a8caeef2a34693438e9231c68dc61e1a8b2c4d29ab2da701c6ddfa0483869eaf    2839 tenant_data_v2/manufactory_1.json
1e738968664f84a35fceb0cd7f28d701dd6d815d51ba209f24bf447b8cebd27c    4075 tenant_data_v2/manufacturer.json
51fade2678ae11a4c42d62ddb5187d733fbbcaa4059d90a8c31966f94cd5bd6c    7681 tenant_data_v2/match_season.json
920484159a752c2885e952ef43325a05c948dc4daa2cde1b440c267564a7e7b7    7898 tenant_data_v2/medicine_enzyme_interaction.json
a01e9b2aa4a2ca57a13b6573385b9cd5becc48575ef5ebad74e75a04b1e5c57a    7926 tenant_data_v2/mountain_photos.json
e5638f188e3a6ac57445d1b8894b1119af5a4786279dcdde16c13f4ce9a4c6b9    4605 tenant_data_v2/movie_1.json
2632b2f4c102c16b0527d29a76820501a33f57f01fdb2ad72064a4082be417ef    4455 tenant_data_v2/museum_visit.json
4e25b1d5e3b9f9975bc3b3bc6386ad8fd7931420192c7b8c3d7a0a0f3b23a116    4472 tenant_data_v2/music_1.json
7c926d9db33bc9b4fe763989d69238b5febf46ec7c44227b8f2ee2edadf436c2    6409 tenant_data_v2/music_4.json
40fc0b9b84c99976fa421778118fa9bfb92a9661638bafe404506efbb5f3e8b0    4630 tenant_data_v2/musical.json
bf93b66ff60b079c5001d46c6cc250bfb47cd5affca2d07408b3ab6ff01a9405    3769 tenant_data_v2/network_1.json
93b185dcd4d77484592919d80cc66d3a0655715253cf988b2858177ef8bd5409    2389 tenant_data_v2/network_2.json
200292bdc98d435a9099e38e093e0ee605419dbc0edb1ee866fcb8dc307a2081    4306 tenant_data_v2/news_report.json
78bc0595636686eb024c27d38c25457cf32f45fcc593fff18b7fe546c5e593cf    8048 tenant_data_v2/orchestra.json
f004272079dcb4e24761d8528d0bea869c0fe392b59b75caea73974d2dacb049    5212 tenant_data_v2/party_host.json
016f4ffe976d5ed7fae2ddd3531da8274fd09a8eb58abf98b3237a98801031b6    6121 tenant_data_v2/party_people.json
5edadea84398ee38bba505e10a672f66803f3943518ca3b61f7a73fcb919cfc0    4696 tenant_data_v2/performance_attendance.json
c39dde5dcf67760a5b20f1155bdd229f84285078e9a460c1e144a2de0c4ebb0a    3573 tenant_data_v2/perpetrator.json
2509bb1fe5cea4fb0679148f5a700b69a357caf4499ca77421f7ac08b20b4092    8286 tenant_data_v2/pets_1.json
44ffb158bfa2dfca5aab0efc8c4dfe62c370e68aa1f70ccb88b84abc225617d3    8016 tenant_data_v2/phone_1.json
368901b7087cefa8ad34f3c922c6e2a28021a38d5a38540d2e149d7d2024194a    4192 tenant_data_v2/phone_market.json
38162d179ef2889472aaf81e932af738a2d397c1b86710c78a5c1c23dca33ad6    5755 tenant_data_v2/pilot_record.json
460dc78db9c58c0428697f50e3e8b8a816ce1cdb6e285667b8e11034316cbec1    3514 tenant_data_v2/poker_player.json
9c6190da121b3dcbb735cd4df3502912ffd6bb55de747e6a578247e4f64e1e48   20443 tenant_data_v2/products_for_hire.json
5084ac9034ff42d0f6f374c8189418752d6caf46b136ade395768283767dd7c5   10002 tenant_data_v2/products_gen_characteristics.json
57f0f0923517ca8249aa465abac9f82539135892ec85bba16ca222f94945c1cb    4876 tenant_data_v2/program_share.json
74d4121ef52ec2773d8562896864be46f3761dafe6f8b96fe632d8bd8981574b    8959 tenant_data_v2/protein_institute.json
86928e9635ebb534cbcffadd9bf1b1964e934c0ae3be977dc21ff669b56840f4    3396 tenant_data_v2/race_track.json
6a726c0cced550bcb66f7af12ac2bb25cfadc6350f9e1d67815411616f9ff19f    6089 tenant_data_v2/railway.json
b4a2e8f841dd38a1d06b2ec75c17dd8d4cff6abc7cecedc49c7120b319831581    5330 tenant_data_v2/real_estate_properties.json
04eb286c25c0c115e4f6d1572e954b28889837b13f96fec37ebed1b500dd600e    8578 tenant_data_v2/restaurant_1.json
74b289972777f7306e7815da53c8c491f3aa5238f4ca02cd87c122908e6f5370    7331 tenant_data_v2/riding_club.json
6cee856542f5349b2000c49f7c8f65b3a9b91ff3e9fc717b54332c2e17b61a60    3543 tenant_data_v2/roller_coaster.json
b2e252d1aee400810692421dbf82bc91fb9cd298fbfe46d30b695dc2de854c33    4897 tenant_data_v2/school_bus.json
7a9b158aa3e7ef06253f590ef75e3ee52c5f8b2fc429647cbe0c5eb686791dc2    7324 tenant_data_v2/school_finance.json
7ba8805589aec3b25d74b3788cef68d632fc81ad63513936fda764e157443ca8    8119 tenant_data_v2/school_player.json
08575456c6446d6c73a373500bf8a6a7e4325b521ede4090a26506b92155982f    4250 tenant_data_v2/scientist_1.json
a3b387b108d743362617feb0a1134c3445efbc5e573c72c0134015a8881786f6    3598 tenant_data_v2/ship_1.json
c800b045980e58de733dd873135afaf87af5b91c2b685acaf5eef08131496546    3574 tenant_data_v2/ship_mission.json
83b021aed4727a3d7efd19fc7446c0c217957c7f27c829e393f3c9f605142b74    5193 tenant_data_v2/shop_membership.json
2c2e58fe00c824e03389491e151a875119779912d6ee8fcba66704608590ffbd    3812 tenant_data_v2/singer.json
af0f71ada65fb16cf27db2bef0688f33dbabaae674962919d7f7c6bf30efc213    3150 tenant_data_v2/small_bank_1.json
3851f3a11939727083645209ff45ffbc80049afa1c8bccef12f8cbdeb197c88b    3978 tenant_data_v2/soccer_2.json
0cf72b5d70561b11752b7ede10aba94139bb870b400909369a7c3a9f69157378   16657 tenant_data_v2/solvency_ii.json
050a41a8734ad6ed27bd2f686cd5dbcf7f3d774c46b8616ac576490d20de5f20    6791 tenant_data_v2/sports_competition.json
93c7f570b2347d35cb6a003371b38049ff9bdb9a23cb3c06791dbf8ccc80c9a8 1504778 tenant_data_v2/store_1.json
3c062e7bb80c5847fdc09eb5f07efe70fc7938f177ab29b09701b1e2c86b9a2c    7340 tenant_data_v2/store_product.json
28637982d34ed87d922fae1ba16f694955690635c5b10f4da72fe066e94a96c8    4857 tenant_data_v2/storm_record.json
418dd4c0821695edf3dc2c043696bdf55d842bba15c1b864d9d22fb3487b4741    7808 tenant_data_v2/student_1.json
70ce172fe77430eb4e1a69464ad5a77e2946fc8f9ccd6a7b72a3029c0e22977b   15043 tenant_data_v2/student_assessment.json
5a735fd576337a41315ec28089ca41de20756b33425c70e236bf6b5b98a69061   31320 tenant_data_v2/student_transcripts_tracking.json
dbfee60c764fbb1b90258432a9407ebdcb5428e0020c38ef18dcf0044dd8f08d    6638 tenant_data_v2/swimming.json
cc21947c3c5ca9b47e3f89473934013f702be8c7a2733611e8792bd8c59e3093    5033 tenant_data_v2/theme_gallery.json
0dd4851fec08a3e31e79513e97f57aadaa1157dace94f4e9ec95b46b42cea536   22276 tenant_data_v2/tracking_grants_for_research.json
762ee3b5054ab5aeccf051b7eb1c8eaf05936ff373428abb9abb2b128a9eafc6   14252 tenant_data_v2/tracking_orders.json
87e6db149ca87b240ad9bc2805a7de7f20d5d7343ba13ec2d772a199caf66800    8136 tenant_data_v2/tracking_share_transactions.json
ae3c3ccc034f3a3eebaa8f1d5c9efa16ffb86b8dea03cbc4919c65d18d084ea5   14762 tenant_data_v2/tracking_software_problems.json
887dfa3cc7221b063c177cd100a4a068cd948050f751f056b104068f4aa2c1ad    6736 tenant_data_v2/train_station.json
5b68770ceabf07df2f70ba1209a4c697f1691e1ccf48f03430d6633cbc521e55   12265 tenant_data_v2/tvshow.json
1451586b3acbeed521eacc37cb1b149a55b3a6db15f2a8a3e9151f163a40fc8d    4342 tenant_data_v2/university_basketball.json
f4051cf838581b67dd7567d65f6d96e1b85f6a24ab5af22ecd694fbb94f85f12   16258 tenant_data_v2/voter_1.json
d06a6f42475544166e2cdc4ea65c69825ffcd4f01f34ec4bba4fee50d5eccb62    9791 tenant_data_v2/voter_2.json
cc3633cf56658334d02ad5d3de221068d6ea9865b7009fc0c58d71098c93df5b    5757 tenant_data_v2/wedding.json
0612d019f364bdd31b9db35798e2136df5acbd87b15c336c351bb6b0c6c364d1  134861 tenant_data_v2/wine_1.json
9bfdd097b4bb20142d472d43f0982b7ce9d6713f4b1336efba752a6d9bfe4d26    4107 tenant_data_v2/workshop_paper.json
c907974a4de2d2d4e51cf1976a0097cd47756c7e5a43decfb871d2b9acb2f851    3989 tenant_data_v2/wrestler.json
""", {"DATA_LICENSE.md": "DATA_LICENSE.md",
      "selected_test_ids.txt": "workspace/peoplejoin-qa/experiments/selected_data.txt"},
                         "data/peoplejoin-qa/"),
            required=("dev.jsonl", "tenant_data_v2"),
        ),
    )
}


# -- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSource:
    """Where a dataset was found: its folder (or, where the dataset allows it, the one file the
    user named), which source gave it, and the checksum of its manifest."""

    name: str
    path: Path
    source: Source
    sha256: str
    files: tuple[str, ...] = field(default=(), repr=False)  # the files the manifest covers

    def to_dict(self) -> dict[str, Any]:
        """The record for result.json."""
        return {"name": self.name, "path": str(self.path), "source": self.source,
                "sha256": self.sha256, "files": len(self.files)}

    def to_metrics(self, prefix: str = "data") -> dict[str, Any]:
        """Flat metrics: `<prefix>.<name>.source`, `.sha256`, `.path`, `.files`."""
        return {f"{prefix}.{self.name}.{k}": v for k, v in self.to_dict().items() if k != "name"}


# -- checksums -------------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """The SHA-256 of a manifest: one `<sha256>  <name>` line per file, sorted by name."""
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _folder_files(root: Path) -> list[str]:
    """Every file under `root` (relative POSIX paths, sorted), hidden ones left out."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


# -- locations -------------------------------------------------------------------------------------
def cache_root() -> Path:
    """lmlab's cache root, for data and models alike: ``$LMLAB_CACHE``, else
    ``$XDG_CACHE_HOME/lmlab``, else ``~/.cache/lmlab``."""
    if os.environ.get("LMLAB_CACHE"):
        return Path(os.environ["LMLAB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lmlab"


def cache_dir(ds: Dataset) -> Path:
    """Where `ds` lives in the cache: a folder named by its manifest checksum."""
    return cache_root() / "data" / ds.name / ds.sha256[:16]


def env_var(name: str) -> str:
    """The environment variable that points at dataset `name`: `LMLAB_DATA_<NAME>`."""
    return "LMLAB_DATA_" + name.upper().replace("-", "_")


def packaged_dir(ds: Dataset) -> Traversable | None:
    """The folder of `ds` inside the installed package, or None where this install has none."""
    try:
        folder = resources.files("lmlab.datasets").joinpath(ds.package)
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


# -- resolving ------------------------------------------------------------------------------------
def dataset(name: str) -> Dataset:
    """The registered dataset `name`, or one clear error listing the known ones."""
    if name not in DATASETS:
        raise LmlabError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def resolve(name: str, path: str | os.PathLike | None = None) -> DataSource:
    """Find dataset `name`: `path`, else $LMLAB_DATA_<NAME>, else the packaged copy, else the
    cache, else a download from the pinned commit (see the module's docstring)."""
    ds = dataset(name)
    if path is not None and str(path) not in ("", "auto"):
        return _given(ds, Path(path).expanduser().absolute(), "explicit", "the given path")
    var = env_var(name)
    if os.environ.get(var):
        return _given(ds, Path(os.environ[var]).expanduser().absolute(), "env", f"${var}")
    target = cache_dir(ds)
    packaged = packaged_dir(ds)
    if packaged is not None:
        if not _complete(ds, target):
            _install(ds, target, lambda tmp: _unpack(ds, packaged, tmp))
        return _found(ds, target, "package")
    if _complete(ds, target):
        return _found(ds, target, "cache")
    missing = [f.name for f in ds.files if f.upstream is None]
    if missing:
        raise LmlabError(
            f"{name}: no packaged copy in this lmlab install and none in the cache ({target}); "
            f"{ds.note}; reinstall lmlab, or pass --set data=PATH or set {var}")
    _install(ds, target, lambda tmp: _download(ds, tmp))
    return _found(ds, target, "download")


def _given(ds: Dataset, p: Path, source: Source, what: str) -> DataSource:
    """A user's folder (or file), checked for the files a study needs, its manifest computed."""
    hint = f"expected a folder holding {', '.join(ds.required)}"
    hint += " (or one such file)" if ds.accepts_file else ""
    if p.is_file():
        if not ds.accepts_file:
            raise LmlabError(f"{ds.name}: {p} ({what}) is a file; {hint}")
        return DataSource(ds.name, p, source, manifest_sha256([(p.name, sha256_file(p))]),
                          (p.name,))
    if not p.is_dir():
        raise LmlabError(f"{ds.name}: {p} ({what}) not found; {hint}")
    absent = [r for r in ds.required if not (p / r).exists()]
    if absent:
        raise LmlabError(f"{ds.name}: {p} ({what}) has no {absent[0]}; {hint}")
    names = _folder_files(p)
    return DataSource(ds.name, p, source,
                      manifest_sha256((n, sha256_file(p / n)) for n in names), tuple(names))


def _found(ds: Dataset, folder: Path, source: Source) -> DataSource:
    return DataSource(ds.name, folder, source, ds.sha256, tuple(f.name for f in ds.files))


def _complete(ds: Dataset, folder: Path) -> bool:
    """Whether `folder` holds every file of `ds` with its pinned size and SHA-256."""
    for f in ds.files:
        p = folder / f.name
        if not p.is_file() or p.stat().st_size != f.size or sha256_file(p) != f.sha256:
            return False
    return True


def _install(ds: Dataset, target: Path, fill: Any) -> None:
    """Fill a fresh temporary folder beside `target` with `fill(tmp)`, then move it into place.
    Whatever goes wrong, the temporary folder is removed, so the cache holds either the complete
    checked dataset or nothing."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as e:
        raise LmlabError(f"cannot write to the lmlab cache {target.parent} ({e.strerror}); "
                         "set LMLAB_CACHE to a writable folder") from None
    try:
        fill(tmp)
        if target.exists():  # damaged (it failed the check) or just written by another process
            if _complete(ds, target):
                return
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _complete(ds, target):  # another process's folder is not it either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_if_empty(target.parent)  # after a failure, leave no empty folders behind either
        _remove_if_empty(target.parent.parent)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _write_checked(ds: Dataset, f: DataFile, stream: IO[bytes], tmp: Path, where: str,
                   progress: Any = None) -> None:
    """Copy `stream` to `tmp/f.name`, refusing it unless its size and SHA-256 are the pinned ones."""
    out = tmp / f.name
    out.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    with open(out, "wb") as w:
        for block in iter(lambda: stream.read(1 << 16), b""):
            size += len(block)
            if size > f.size:
                break  # longer than the pinned file: no need to read the rest
            h.update(block)
            w.write(block)
            if progress is not None:
                progress(len(block))
    if size != f.size or h.hexdigest() != f.sha256:
        got = (f"more than {f.size} bytes" if size > f.size else f"{size} bytes"
               if size < f.size else f"SHA-256 {h.hexdigest()[:12]}...")
        raise LmlabError(
            f"{ds.name}: {f.name} from {where} does not match the pinned file ({got}, expected "
            f"{f.size} bytes with SHA-256 {f.sha256[:12]}...); refused, nothing was kept")


# -- the packaged copy -----------------------------------------------------------------------------
def _unpack(ds: Dataset, packaged: Traversable, tmp: Path) -> None:
    """Write every file of `ds` from the package folder into `tmp`: a file stored as it is, or
    gzipped (`<name>.gz`), or inside the folder's `.tar.gz` archive; each one is checked."""
    where = f"the packaged copy ({packaged})"
    from_archive = []
    for f in ds.files:
        plain, gz = packaged.joinpath(f.name), packaged.joinpath(f.name + ".gz")
        if plain.is_file():
            with plain.open("rb") as s:
                _write_checked(ds, f, s, tmp, where)
        elif gz.is_file():
            with gz.open("rb") as raw, gzip.GzipFile(fileobj=raw) as s:
                _write_checked(ds, f, s, tmp, where)
        else:
            from_archive.append(f)
    if from_archive:
        wanted = {f.name: f for f in from_archive}
        archive = packaged.joinpath(ds.archive) if ds.archive else None
        if archive is None or not archive.is_file():
            raise LmlabError(f"{ds.name}: the packaged copy lacks {from_archive[0].name}; "
                             "reinstall lmlab")
        with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            for member in tar:
                f = wanted.pop(member.name, None)
                if f is not None and member.isfile():
                    with tar.extractfile(member) as s:  # type: ignore[union-attr]
                        _write_checked(ds, f, s, tmp, where)
        if wanted:
            raise LmlabError(f"{ds.name}: the packaged copy lacks {next(iter(wanted))}; "
                             "reinstall lmlab")


# -- downloading -----------------------------------------------------------------------------------
def _download(ds: Dataset, tmp: Path) -> None:
    """Fetch every file of `ds` at its pinned commit into `tmp`, each checked as it arrives."""
    with _progress(ds) as advance:
        for f in ds.files:
            url = ds.url(f)
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
                    _write_checked(ds, f, r, tmp, url, advance)
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
                raise LmlabError(
                    f"{ds.name}: cannot download {url} ({reason}); with no network, pass "
                    f"--set data=PATH or set {env_var(ds.name)} to a copy of the dataset"
                ) from None


class _progress:
    """A rich progress bar over the dataset's bytes on a terminal; one line each at the start and
    the end otherwise. Used as `with _progress(ds) as advance: advance(n_bytes)`."""

    def __init__(self, ds: Dataset):
        from rich.console import Console

        self.ds = ds
        self.console = Console(stderr=True)
        self.bar: Any = None

    def __enter__(self) -> Any:
        ds = self.ds
        what = f"{ds.name}: {len(ds.files)} files, {ds.size / 1e6:.1f} MB from {ds.repo}@{ds.commit[:7]}"
        if not self.console.is_terminal:
            print(f"downloading {what}", file=sys.stderr, flush=True)
            return lambda n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(), console=self.console)
        self.bar.start()
        task = self.bar.add_task(f"downloading {ds.name}", total=ds.size)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif kind is None:
            print(f"downloaded {self.ds.name}: every checksum matches", file=sys.stderr, flush=True)

